"""convlab train --nproc 2: DistributedDataParallel over gloo on the CPU, against one process.

Two real processes each (start-up is slow, so two tests): the weights of a 2-process run equal those of a
1-process run on the same global batches, every rank holds identical weights, the logged losses agree;
a rank that raises makes the command exit with status 3 naming it, within a timeout, and leaves the last
complete checkpoint and no temporary file. tests/ddp_worker.py is the launcher/worker with the test hooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from convlab.train.checkpoint import load_checkpoint

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
if not torch.distributed.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

WORKER = os.path.join(os.path.dirname(__file__), "ddp_worker.py")
COMMON = ["lenet", "--limit", "64", "--batch-size", "32", "--epochs", "2", "--optimizer", "sgd", "--lr", "0.1",
          "--momentum", "0.9", "--seed", "1", "--quiet"]


def command(argv, hooks=None, timeout=240):
    env = dict(os.environ, CONVLAB_TEST_DDP=json.dumps(hooks or {}))
    return subprocess.run([sys.executable, WORKER, "--parent", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout)


def losses(logdir):
    lines = [json.loads(line) for line in open(os.path.join(logdir, "metrics.jsonl"))]
    return [line["value"] for line in lines if line["tag"] == "loss/train" and "epoch" in line
            and isinstance(line["step"], int)]


def test_two_processes_equal_one_process_on_the_global_batches(tmp_path):
    """LeNet (no BatchNorm: DDP does not sync batch statistics) float32, SGD momentum, 3 steps of 32 = 2 x 16."""
    (tmp_path / "dump").mkdir()
    two = command([*COMMON, "--nproc", "2", "--steps", "3", "--checkpoint", str(tmp_path / "two.safetensors"),
                   "--logdir", str(tmp_path / "logs2")], hooks={"dump": str(tmp_path / "dump")})
    assert two.returncode == 0, two.stderr
    one = command([*COMMON, "--engine", "torch", "--steps", "3", "--checkpoint", str(tmp_path / "one.safetensors"),
                   "--logdir", str(tmp_path / "logs1")])
    assert one.returncode == 0, one.stderr
    ranks = [dict(np.load(tmp_path / "dump" / f"rank{r}.npz")) for r in range(2)]
    for key in ranks[0]:
        assert np.array_equal(ranks[0][key], ranks[1][key]), key  # every rank holds the same weights
    reference = load_checkpoint(tmp_path / "one.safetensors")
    written = load_checkpoint(tmp_path / "two.safetensors")  # by rank 0
    assert written.step == reference.step == 3
    for key, value in reference.model_state.items():
        np.testing.assert_allclose(written.model_state[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
        assert np.array_equal(written.model_state[key], ranks[0][key]), key
    # the same global metrics (all-reduced over the ranks), logged by rank 0 only
    np.testing.assert_allclose(losses(tmp_path / "logs2"), losses(tmp_path / "logs1"), rtol=1e-5)
    assert two.stdout.count("test accuracy") == 1 and two.stdout.splitlines()[-1] == one.stdout.splitlines()[-1]


def test_a_failing_rank_stops_the_run_and_names_itself(tmp_path):
    """Rank 1 raises before step 3 (epoch 2): exit status 3, the message names rank 1, epoch 1's checkpoint
    stays whole (step 2) and no temporary file is left beside it."""
    path = tmp_path / "run.safetensors"
    result = command([*COMMON, "--nproc", "2", "--checkpoint", str(path)], hooks={"fail_rank": 1, "fail_step": 3},
                     timeout=180)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "rank 1 of 2 failed: RuntimeError: injected failure on rank 1 at step 3" in result.stderr
    assert load_checkpoint(path).step == 2
    assert sorted(os.listdir(tmp_path)) == ["run.safetensors"]
