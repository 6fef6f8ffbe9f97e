"""One CPU call's rows split across worker threads that each run torch single-threaded.

Why not torch's own intra-op threads: the tiled nearest-code search is hundreds of short ops, each an OpenMP
parallel region that ends at a barrier. When another process keeps one of the cores busy, every barrier waits for
the thread whose core is taken: at 16,384 x 16,384 x dim 8 on the 2-core benchmark machine with one busy process,
torch's 2 threads took 3.7-12.7 s where one thread took 0.25-0.39 s (``benchmarks/contention.py``). Here each
worker runs whole blocks of rows on its own, with no barrier between its ops; the caller waits once, at the end.

Each worker sets torch's intra-op threads to 1 for itself. torch keeps that per thread once the thread has made
its first torch call (OpenMP's and MKL's thread counts are per-thread values), but ``torch.set_num_threads`` also
sets the process-wide value that threads read at their first call, so the caller's value is put back as soon as
the workers have started (a thread of the user's that makes its very first torch call in that instant, once per
process, would start with one thread).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

_pools = {}
_lock = threading.Lock()


def _forget_pools_in_child() -> None:
    # threads do not survive fork: a forked child (a DataLoader worker) starts its own pools
    global _lock
    _pools.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_in_child)


def _single_threaded_worker() -> None:
    torch.get_num_threads()  # torch's per-thread setup first, or its first call would undo the 1 below
    torch.set_num_threads(1)


def single_threaded_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` threads whose torch ops run on one thread each (created once)."""
    with _lock:
        if workers not in _pools:
            caller_threads = torch.get_num_threads()
            pool = ThreadPoolExecutor(workers, initializer=_single_threaded_worker, thread_name_prefix="hf_vq_rows")
            started = threading.Barrier(workers)  # one task per worker, so every worker starts and sets itself up
            list(pool.map(lambda _: started.wait(), range(workers)))
            torch.set_num_threads(caller_threads)
            _pools[workers] = pool
        return _pools[workers]


def run_row_parts(num_rows: int, align: int, function) -> list:
    """``function(start, count)`` over contiguous parts of ``range(num_rows)``, one part per intra-op thread of
    the caller (``torch.get_num_threads()``), each part a multiple of ``align`` rows except the last, run in
    single-threaded workers in the caller's grad and inference mode; returns the results in row order. One thread or
    one part, or under ``torch.compile``: run in the caller."""
    if torch.compiler.is_compiling():  # a compiled graph cannot hold threads (nor ask for their count): one piece
        return [function(0, num_rows)]
    threads = torch.get_num_threads()
    blocks = -(-num_rows // align)
    parts = max(1, min(threads, blocks))
    if parts == 1:
        return [function(0, num_rows)]
    per_part = -(-blocks // parts) * align
    # grad and inference mode are per thread: the workers take the caller's (an inference tensor of the caller's
    # may only be written in inference mode)
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def run_part(start: int):
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return function(start, min(per_part, num_rows - start))

    return list(single_threaded_pool(threads).map(run_part, range(0, num_rows, per_part)))


__all__ = ["run_row_parts", "single_threaded_pool"]
