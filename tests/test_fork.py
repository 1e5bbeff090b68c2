"""convlab is safe to use before and after ``fork()``, and from several threads.

Each check runs a script in a fresh Python process (so it does not depend on
which tests ran before it in this one, nor on the threading layer they
started), under a hang guard: a process forked after a call of a parallel
kernel on GNU OpenMP hangs or dies ("fork() called from a process already
using GNU OpenMP"), and two Python threads launching kernels at once on
Numba's ``workqueue`` layer abort the process. The compiled depthwise kernels
need numba (the ``fast`` extra); without it these tests skip.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convlab.functional as F

from .helpers import assert_close

pytest.importorskip("numba", reason="the compiled depthwise kernels (and their threading layer) need numba")

#: Hang guard of one script: generous (a spawned worker imports NumPy, convlab and numba), far below a hang.
TIMEOUT_SECONDS = 60

# The workers' job: one compiled depthwise call (float32, weight (C, 1, 3, 3), groups=C) and one plain
# convolution, on inputs drawn from the seed. Run by the parent and by the pool's workers.
SCRIPT = textwrap.dedent('''
    import multiprocessing
    import sys

    import numpy as np

    import convlab.functional as F


    def compute(seed):
        import numba  # imported by the first compiled call, in the parent as in a fresh child
        from convlab.ops.algorithms import depthwise
        from convlab.ops.algorithms._layout import Call

        rng = np.random.default_rng(seed)
        x = rng.standard_normal((2, 6, 11, 11)).astype(np.float32)  # (N, C, H, W)
        w_depthwise = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)  # (C, 1, KH, KW)
        w_plain = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)  # (C_out, C, KH, KW)
        call = Call.of(x, w_depthwise, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 6)
        if not depthwise.uses_numba(call):
            raise RuntimeError("the depthwise call would not run on the compiled kernel")
        compiled = F.conv2d(x, w_depthwise, padding=1, groups=6, algorithm="depthwise")
        plain = F.conv2d(x, w_plain, padding=1)
        return numba.threading_layer(), compiled, plain


    def step(text):
        print(text, flush=True)  # the last line printed tells where a hang happened


    def main(out):
        seeds = range(4)
        results = {}
        fork = multiprocessing.get_context("fork")
        step("fork first: a pool forked before the parent has run any parallel kernel")
        with fork.Pool(2) as early:
            step("compute in the parent after the fork")
            results["parent_after_fork"] = [compute(seed) for seed in seeds]
            step("compute in the children forked first")
            results["children_forked_first"] = early.map(compute, seeds)
        step("compute in the parent (its kernel threads have run)")
        results["parent"] = [compute(seed) for seed in seeds]
        step("fork after computing: a pool forked while the parent's kernel threads exist")
        with fork.Pool(2) as late:
            results["children_forked_after"] = late.map(compute, seeds)
        for method in ("spawn", "forkserver"):
            step(f"a pool started by {method}")
            with multiprocessing.get_context(method).Pool(1) as pool:
                results[f"children_{method}"] = pool.map(compute, seeds)
        step("done")
        arrays = {}
        for name, computed in results.items():
            for seed, (layer, compiled, plain) in zip(seeds, computed, strict=True):
                arrays[f"{name}_{seed}_compiled"] = compiled
                arrays[f"{name}_{seed}_plain"] = plain
                arrays[f"{name}_{seed}_layer"] = np.array(layer)
        np.savez(out, **arrays)


    if __name__ == "__main__":
        main(sys.argv[1])
''')

THREADS_SCRIPT = textwrap.dedent('''
    import threading

    import numpy as np

    import convlab.functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 28, 28)).astype(np.float32)  # (N, C, H, W)
    w = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)  # (C, 1, KH, KW)
    expected = F.conv2d(x, w, padding=1, groups=32, algorithm="depthwise")
    mismatches = []


    def run():
        for _ in range(15):
            if not np.array_equal(F.conv2d(x, w, padding=1, groups=32, algorithm="depthwise"), expected):
                mismatches.append(1)


    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("mismatches", len(mismatches))
''')


def _run(tmp_path, script: str, *args: str) -> str:
    """Run ``script`` in a fresh interpreter under the hang guard; fail with its output if it hangs or fails.

    The script runs in a session of its own with its output in files, so that on a hang the whole group
    (the pool's workers included) is killed and nothing waits on a pipe a worker still holds.
    """
    path, stdout, stderr = tmp_path / "script.py", tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    path.write_text(script)
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_THREADING_LAYER"}  # convlab's choice
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, str(path), *args], stdout=out, stderr=err, env=env,
                                   cwd=tmp_path, start_new_session=True)
        try:
            status = process.wait(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = None
    output = f"stdout:\n{stdout.read_text()}\nstderr:\n{stderr.read_text()}"
    if status is None:
        pytest.fail(f"hung for {TIMEOUT_SECONDS} s, killed:\n{output}")
    assert status == 0, f"exit status {status}:\n{output}"
    return stdout.read_text()


CHILDREN = ("parent_after_fork", "children_forked_first", "children_forked_after", "children_spawn",
            "children_forkserver")


@pytest.mark.skipif(not {"fork", "forkserver"} <= set(multiprocessing.get_all_start_methods()),
                    reason="the 'fork' and 'forkserver' start methods exist on POSIX systems only")
def test_pool_workers_compute_what_the_parent_computes(tmp_path):
    out = tmp_path / "results.npz"
    _run(tmp_path, SCRIPT, str(out))
    with np.load(out) as results:
        for seed in range(4):
            parent = results[f"parent_{seed}_compiled"], results[f"parent_{seed}_plain"]
            for name in CHILDREN:
                np.testing.assert_array_equal(results[f"{name}_{seed}_compiled"], parent[0], f"{name} {seed}")
                np.testing.assert_array_equal(results[f"{name}_{seed}_plain"], parent[1], f"{name} {seed}")
            if sys.platform.startswith("linux"):
                layers = {name: str(results[f"{name}_{seed}_layer"]) for name in ("parent",) + CHILDREN}
                assert "omp" not in layers.values(), f"GNU OpenMP (not fork safe) was chosen: {layers}"
        # and the parent's numbers are the convolution's (the reference algorithm, in this process)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 6, 11, 11)).astype(np.float32)  # (N, C, H, W)
        w_depthwise = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)  # (C, 1, KH, KW)
        w_plain = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)  # (C_out, C, KH, KW)
        assert_close(results["parent_0_compiled"],
                     F.conv2d(x, w_depthwise, padding=1, groups=6, algorithm="reference"), "depthwise")
        assert_close(results["parent_0_plain"], F.conv2d(x, w_plain, padding=1, algorithm="reference"), "plain")


def test_threads_launch_kernels_concurrently(tmp_path):
    # workqueue, the fork-safe layer without TBB, aborts on concurrent launches unless they are serialized
    stdout = _run(tmp_path, THREADS_SCRIPT)
    assert stdout.split() == ["mismatches", "0"], stdout
