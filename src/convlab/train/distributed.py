"""``convlab train --nproc N``: data-parallel training over PyTorch's DistributedDataParallel.

The same command runs on one process, on N processes of this machine, or under
``torchrun`` on several machines; only the launcher differs:

* ``convlab train MODEL --nproc N`` starts N worker processes itself
  (:func:`launch`), with torchrun's environment (``RANK``, ``LOCAL_RANK``,
  ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT``: a free port, or
  ``--master-port``) and ``OMP_NUM_THREADS`` = cores // N each (unless set), and
  watches them;
* ``torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint
  HOST:PORT -m convlab.train MODEL --engine torch [--device cuda]`` starts the
  workers on each machine; a process that finds ``RANK``/``WORLD_SIZE`` in its
  environment is a worker (:func:`plan`).

A worker initialises the default process group (gloo on the CPU, NCCL with
``--device cuda``, each rank on GPU ``LOCAL_RANK``; a timeout on every
collective), trains through :class:`~convlab.train.torch_engine.TorchEngine` with
``distributed=True`` and destroys the group at the end. What every rank sees:

* the same global batches: the loader's permutation of epoch ``e`` is
  ``default_rng([seed, e])`` on every rank (``set_epoch`` semantics: the loop asks
  for epoch e's batches), ``--batch-size`` is the *global* batch and rank r trains
  on ``batch[r::N]`` (``DistributedSampler``'s interleaving); the step count, the
  schedule and the checkpoints are those of a one-process run, which a checkpoint
  resumes with any N;
* the global metrics (the engine all-reduces the loss, the correct count and the
  count); rank 0 alone prints, logs TensorBoard and writes checkpoints (atomically;
  the others wait on a barrier).

Failures: a worker that raises writes a record (rank, time, the exception) and exits
with status 3; the launcher then stops the others (SIGTERM, SIGKILL after 5 s: a
rank blocked in a collective cannot finish a write, and a rank in the middle of a
write removes its temporary file on SIGTERM), prints which rank failed first and
why, and exits with status 3. Ctrl-C asks every rank to stop before the same step
(a flag all-reduced with the metrics), rank 0 writes the checkpoint, and the exit
status is 130, as on one process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TIMEOUT", "WORKER_FAILED", "Plan", "launch", "plan", "worker_command", "worker_main"]

WORKER_FAILED = 3  # the exit status of a worker that raised, and of the launcher when a worker failed
TIMEOUT = 300.0  # seconds a collective may wait for the other ranks (init_process_group's timeout)
_GRACE = 30.0  # seconds the launcher lets the other ranks end by themselves after one ended with 1, 2 or 130
_KILL_AFTER = 5.0
_ENGINES = ("numpy", "torch")


def _refuse(option: str, text: object, problem: str) -> ValueError:
    return ValueError(f"`{option}` (={text!r}): {problem}")


def _environment() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when torchrun's variables say this process is a worker, else None."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise _refuse("RANK/WORLD_SIZE", f"{os.environ['RANK']}/{os.environ['WORLD_SIZE']}",
                      "torchrun's variables must be integers") from None
    if not 0 <= rank < world:
        raise _refuse("RANK", rank, f"must be in [0, WORLD_SIZE={world})")
    return rank, world, local


@dataclass
class Plan:
    """How this ``convlab train`` process runs: the engine, the device, and its place in a distributed run."""

    engine: str = "numpy"
    device: str = "cpu"
    nproc: int = 1
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launch: bool = False  # this process starts ``nproc`` workers and watches them
    master_port: int | None = None
    timeout: float = TIMEOUT
    _group: bool = False

    @property
    def worker(self) -> bool:
        return self.world_size > 1 or _environment() is not None

    def engine_factory(self) -> Any:
        """What ``fit(engine=...)`` takes: None (the NumPy engine) or a TorchEngine factory."""
        if self.engine == "numpy":
            return None
        import functools

        from .torch_engine import TorchEngine

        device = f"cuda:{self.local_rank}" if self.device == "cuda" and self.world_size > 1 else self.device
        return functools.partial(TorchEngine, device=device, distributed=self._group)

    def __enter__(self) -> Plan:
        """A worker joins the process group (gloo, or NCCL on CUDA) with a timeout on every collective."""
        if not self.worker:
            return self
        import datetime

        import torch
        import torch.distributed as dist

        if self.device == "cuda":
            torch.cuda.set_device(self.local_rank)
        dist.init_process_group("nccl" if self.device == "cuda" else "gloo", init_method="env://",
                                timeout=datetime.timedelta(seconds=self.timeout))
        self._group = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._group:
            import torch.distributed as dist

            if exc[0] is None:
                dist.barrier()  # everybody done (rank 0's last checkpoint and logs are complete)
            dist.destroy_process_group()
            self._group = False


def plan(args: argparse.Namespace, parse_int: Any) -> Plan:
    """Check ``--engine``, ``--nproc``, ``--device`` and ``--master-port`` (before any data is read).

    ``parse_int(option, text, minimum)`` is the CLI's integer check. Refusals are ValueErrors naming the option
    and the value: ``--nproc 0``, ``--engine numpy`` with ``--nproc 2`` or ``--device cuda``, ``--device cuda``
    without a CUDA device, the torch engine without torch (the install command), a port in use.
    """
    engine = getattr(args, "engine", None)
    device = getattr(args, "device", None) or "cpu"
    nproc = parse_int("--nproc", getattr(args, "nproc", None), 1)
    port = parse_int("--master-port", getattr(args, "master_port", None), 1)
    if engine is not None and engine not in _ENGINES:
        raise _refuse("--engine", engine, f"must be one of {', '.join(_ENGINES)}")
    if device not in ("cpu", "cuda"):
        raise _refuse("--device", device, "must be cpu or cuda")
    if port is not None and port > 65535:
        raise _refuse("--master-port", args.master_port, "must be a TCP port, 1 to 65535")
    env = _environment()
    if engine == "numpy" and device != "cpu":
        raise _refuse("--device", device, "needs --engine torch (the NumPy engine runs on the cpu)")
    if engine == "numpy" and ((nproc or 1) > 1 or env is not None):
        raise _refuse("--engine", engine, f"--nproc {nproc or env[1]} runs PyTorch's DistributedDataParallel; "  # type: ignore[index]
                                          f"use --engine torch (or leave --engine out)")
    torch_needed = engine == "torch" or (nproc or 1) > 1 or env is not None or device != "cpu"
    result = Plan(engine="torch" if torch_needed else "numpy", device=device, nproc=nproc or 1,
                  timeout=float(getattr(args, "dist_timeout", TIMEOUT)))
    if torch_needed:
        try:
            import torch
        except ImportError:
            raise _refuse("--engine", engine or "torch", 'needs PyTorch: pip install "convlab[torch]"') from None
        if device == "cuda" and not torch.cuda.is_available():
            raise _refuse("--device", device, f"torch {torch.__version__} finds no CUDA device "
                                              f"(torch.cuda.is_available() is False); use --device cpu")
    if env is not None:  # a worker (started by launch() or torchrun)
        result.rank, result.world_size, result.local_rank = env
        if nproc is not None and nproc != result.world_size and not getattr(args, "_launched", False):
            raise _refuse("--nproc", args.nproc, f"differs from WORLD_SIZE={result.world_size} set by torchrun "
                                                 f"(leave --nproc out under torchrun)")
        return result
    if result.nproc > 1:
        result.launch = True
        cores = os.cpu_count() or 1
        if result.nproc > cores:
            print(f"convlab train: warning: --nproc {result.nproc} is more than the {cores} cores of this machine; "
                  f"the processes will share them", file=sys.stderr)
        if result.device == "cuda" and result.nproc > torch.cuda.device_count():
            raise _refuse("--nproc", result.nproc, f"is more than the {torch.cuda.device_count()} CUDA devices "
                                                   f"(one process per GPU)")
        result.master_port = _check_port(port) if port is not None else _free_port()
    return result


def _check_port(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise _refuse("--master-port", str(port), f"the port is in use on 127.0.0.1 ({exc.strerror or exc}); "
                                                      f"choose another or leave the option out") from None
    return port


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- the launcher


def worker_command() -> list[str]:
    """The program each worker runs, followed by the run's settings as JSON (:func:`worker_main`)."""
    return [sys.executable, "-m", "convlab.train.distributed"]


def _payload(args: argparse.Namespace, failures: str) -> str:
    settings = {key: value for key, value in vars(args).items()
                if isinstance(value, (str, int, float, bool, type(None))) and not key.startswith("_")}
    settings.update(_launched=True, _failures=failures)
    return json.dumps(settings)


def launch(args: argparse.Namespace, run_plan: Plan, *, out: Any = None) -> int:
    """Start ``run_plan.nproc`` workers running the same ``convlab train`` and watch them; the exit status.

    Rank 0 prints to this process's stdout and stderr; the others' output is kept in a temporary
    folder and shown only when one of them fails. Status: the workers' common status (0, 1 NaN,
    2 refused, 130 interrupted), or :data:`WORKER_FAILED` with a message naming the rank that failed first.
    """
    err = out if out is not None else sys.stderr
    nproc = run_plan.nproc
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // nproc))
    with tempfile.TemporaryDirectory(prefix="convlab-ddp-") as folder:
        procs: list[subprocess.Popen] = []
        logs = []
        try:
            for rank in range(nproc):
                env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                           LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1",
                           MASTER_PORT=str(run_plan.master_port), OMP_NUM_THREADS=threads)
                log = open(os.path.join(folder, f"rank{rank}.stderr"), "wb")
                logs.append(log)
                procs.append(subprocess.Popen(
                    [*worker_command(), _payload(args, folder)], env=env,
                    stdout=None if rank == 0 else subprocess.DEVNULL, stderr=None if rank == 0 else log,
                    start_new_session=True))  # Ctrl-C reaches this process only; it tells the workers
            codes = _watch(procs)
        finally:
            _stop(procs)
            for log in logs:
                log.close()
        if len(set(codes)) == 1 and codes[0] != WORKER_FAILED and codes[0] >= 0:
            return codes[0]
        print(_failure_message(folder, codes, args), file=err)
        return WORKER_FAILED


def _watch(procs: list[subprocess.Popen]) -> list[int]:
    """Wait for every worker; stop the others when one crashes (or when the rest outstay the grace period)."""
    ended_at = None
    interrupts = 0
    while True:
        try:
            codes = [p.poll() for p in procs]
            if all(code is not None for code in codes):
                return [int(code) for code in codes]  # type: ignore[arg-type]
            ended = [code for code in codes if code is not None and code != 0]
            if ended:
                ended_at = ended_at if ended_at is not None else time.monotonic()
                crashed = any(code not in (1, 2, 130) for code in ended)  # 3 (raised) or killed by a signal
                if crashed or time.monotonic() - ended_at > _GRACE:
                    _stop(procs)
                    return [int(p.returncode) for p in procs]
            time.sleep(0.05)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts > 1:  # a second Ctrl-C: stop now
                _stop(procs)
                return [130 if p.returncode in (None, -signal.SIGTERM, -signal.SIGKILL) else int(p.returncode)
                        for p in procs]
            for p in procs:  # the first: every rank stops before the same step and rank 0 writes a checkpoint
                if p.poll() is None:
                    p.send_signal(signal.SIGUSR1)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every worker still running, SIGKILL after a few seconds; wait for all."""
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        p.terminate()
    deadline = time.monotonic() + _KILL_AFTER
    for p in alive:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _failure_message(folder: str, codes: Sequence[int], args: argparse.Namespace) -> str:
    records = []
    for name in os.listdir(folder):
        if name.startswith("failure-rank") and name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                records.append(json.load(f))
    records.sort(key=lambda record: record["time"])
    if records:
        first = records[0]
        rank, what = first["rank"], first["error"]
    else:  # no record: killed from outside, or died in C code
        rank = next(r for r, code in enumerate(codes) if code != 0)
        what = f"exit status {codes[rank]}" + (f" (signal {-codes[rank]})" if codes[rank] < 0 else "")
    lines = [f"convlab train: error: rank {rank} of {len(codes)} failed: {what}; the other processes were stopped "
             f"(exit statuses {list(codes)})"]
    if rank != 0:
        with open(os.path.join(folder, f"rank{rank}.stderr"), errors="replace") as f:
            tail = f.read().rstrip().splitlines()[-12:]
        lines += [f"  rank {rank}: {line}" for line in tail]
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint:
        lines.append(f"  the last complete checkpoint (if any) is {checkpoint}; checkpoints are written whole or "
                     f"not at all")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the worker


def worker_main(argv: Sequence[str] | None = None) -> int:
    """A worker started by :func:`launch`: run ``convlab train`` with the JSON settings in ``argv[0]``."""
    import traceback

    settings = json.loads((sys.argv[1:] if argv is None else argv)[0])
    args = argparse.Namespace(**settings)
    rank = int(os.environ.get("RANK", "0"))
    from . import torch_engine

    def stop_requested(signum: int, frame: Any) -> None:
        torch_engine.STOP_REQUEST.set()

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwinds: an atomic write in progress removes its temporary file

    signal.signal(signal.SIGUSR1, stop_requested)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher turns Ctrl-C into SIGUSR1
    if rank != 0:
        sys.stdout = open(os.devnull, "w")
    from .cli import run

    try:
        return run(args)
    except BaseException as exc:
        if isinstance(exc, SystemExit) and exc.code in (128 + signal.SIGTERM,):
            return int(exc.code)
        traceback.print_exc()
        record = {"rank": rank, "time": time.time(), "error": f"{type(exc).__name__}: {exc}".strip()}
        folder = settings.get("_failures")
        if folder and os.path.isdir(folder):
            path = os.path.join(folder, f"failure-rank{rank}.json")
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.replace(path + ".tmp", path)
        return WORKER_FAILED


if __name__ == "__main__":
    sys.exit(worker_main())
