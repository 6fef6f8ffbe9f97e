"""The nearest-code search when another process keeps one core busy (a shared CPU).

    python benchmarks/contention.py            # about a minute on a 2-core machine

Starts one busy process (a single-threaded float32 matmul loop: another user's job), then times, each in a fresh
interpreter so the OpenMP settings apply: the default tiled search (row blocks in single-threaded workers,
``hf_vq/utils/cpu_workers.py``) with torch's default threads and with one thread; the same tiles run on torch's own
threads (as before the workers), also with ``OMP_WAIT_POLICY=PASSIVE``; the fused kernel (needs a C compiler; the
error is printed otherwise); ``torch.cdist`` + argmin. Best of 5 after one warm-up. The figures are seconds on this
machine at this moment: compare them with each other, within one run.

Why: on torch's own threads the tiled search is hundreds of short parallel regions, and each waits at OpenMP's
barrier for the thread whose core is taken; the workers meet once per call. README.md ("A busy core no longer
stalls large searches") quotes one run.
"""

import argparse
import json
import os
import subprocess
import sys
import time

CASE = r"""
import json, sys, time, torch
from hf_vq.quantizers import nearest
kind, n, k, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if kind not in ("tiled", "tiled-torch-threads", "fused", "cdist"):
    raise SystemExit(f"unknown case {kind!r}")
generator = torch.Generator().manual_seed(0)
vectors, codebook = torch.randn(n, d, generator=generator), torch.randn(k, d, generator=generator)
if kind == "fused":
    nearest.set_cpu_search_kernel("fused")
if kind == "tiled-torch-threads":  # the same tiles with no workers: every op on torch's threads (hf_vq before 11/2026)
    nearest.run_row_parts = lambda num_rows, align, function: [function(0, num_rows)]
def call():
    if kind == "cdist":
        return torch.cdist(vectors, codebook).argmin(1)
    return nearest.nearest_code(vectors, codebook)
times = []
for _ in range(6):
    start = time.perf_counter(); call(); times.append(time.perf_counter() - start)
print(json.dumps({"best": min(times[1:]), "threads": torch.get_num_threads()}))
"""

BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True:\n    a @ a\n"


def base_environment() -> dict:
    """This process's environment without the thread settings the cases choose themselves."""
    return {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}


def run_case(kind: str, size: tuple, env_extra: dict) -> dict:
    env = {**base_environment(), **env_extra}
    done = subprocess.run([sys.executable, "-c", CASE, kind, *map(str, size)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=3, default=(16384, 16384, 8), metavar=("N", "K", "D"),
                        help="vectors, codes, dim (the workers run from nearest.WORKERS_MIN_PRODUCT multiply-adds on)")
    args = parser.parse_args(argv)
    cases = [
        ("tiled (default: row blocks in single-threaded workers), default threads", "tiled", {}),
        ("tiled (default), one thread", "tiled", {"OMP_NUM_THREADS": "1"}),
        ("the same tiles on torch's own threads (before the workers), default threads", "tiled-torch-threads", {}),
        ("the same tiles on torch's own threads, OMP_WAIT_POLICY=PASSIVE", "tiled-torch-threads",
         {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("fused (opt-in), default threads", "fused", {}),
        ("torch.cdist + argmin, default threads", "cdist", {}),
        ("torch.cdist + argmin, one thread", "cdist", {"OMP_NUM_THREADS": "1"}),
    ]
    busy = subprocess.Popen([sys.executable, "-c", BUSY], env=base_environment())
    try:
        time.sleep(3)  # the busy process has imported torch and is multiplying
        print(f"{os.cpu_count()} cores, one busy process; load average {os.getloadavg()[0]:.2f}; "
              f"vectors x codes x dim = {' x '.join(map(str, args.size))}; best of 5 after a warm-up")
        for label, kind, env in cases:
            result = run_case(kind, tuple(args.size), env)
            figure = f"{result['best']:.3f} s ({result['threads']} threads)" if "best" in result else result["error"]
            print(f"- {label}: {figure}", flush=True)
    finally:
        busy.kill()
        busy.wait()


if __name__ == "__main__":
    main()
