"""A ``convlab train --nproc`` launcher and worker for tests/test_train_ddp.py (not collected by pytest).

``python tests/ddp_worker.py --parent ARGS...`` runs ``convlab train ARGS`` with the workers started as this
script, which runs the real worker (:func:`convlab.train.distributed.worker_main`) after two test hooks read
from ``CONVLAB_TEST_DDP`` (JSON): ``dump`` (a folder: each rank saves its final weights there as rank<R>.npz)
and ``fail_rank``/``fail_step`` (that rank raises RuntimeError before that training step).
"""

import json
import os
import sys

import numpy as np

from convlab.train import distributed


def main() -> None:
    if sys.argv[1] == "--parent":
        distributed.worker_command = lambda: [sys.executable, os.path.abspath(__file__)]
        from convlab.train.cli import main

        sys.exit(main(sys.argv[2:]))

    hooks = json.loads(os.environ.get("CONVLAB_TEST_DDP", "{}"))
    rank = int(os.environ["RANK"])
    from convlab.train import loop, torch_engine

    if "dump" in hooks:
        original_fit = loop.fit

        def fit(model, *args, **kwargs):
            history = original_fit(model, *args, **kwargs)
            np.savez(os.path.join(hooks["dump"], f"rank{rank}.npz"), **model.state_dict())
            return history

        loop.fit = fit

    if hooks.get("fail_rank") == rank:
        original_step = torch_engine.TorchEngine.train_step
        calls = []

        def train_step(self, x, y):
            calls.append(1)
            if len(calls) == hooks["fail_step"]:
                raise RuntimeError(f"injected failure on rank {rank} at step {len(calls)}")
            return original_step(self, x, y)

        torch_engine.TorchEngine.train_step = train_step

    sys.exit(distributed.worker_main())


if __name__ == "__main__":
    main()
