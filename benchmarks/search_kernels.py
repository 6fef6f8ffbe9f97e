"""The nearest-code search's two CPU kernels against the matmul floor, timed interleaved in one process.

    python benchmarks/search_kernels.py                     # 16,384 x 16,384 and 4,096 x 100,000 codes, dim 8
    python benchmarks/search_kernels.py --dims 8 16 32 64 128 256 --sizes 16384x16384 --every-dim
        # where "fused" stops winning: the kernel at every dim, FUSED_MAX_DIM lifted for this run

Each run times, back to back: a square float32 matmul (the machine's FLOP/s), ``nearest_code`` with the default
"tiled" search and with the opt-in "fused" kernel (``hf_vq.quantizers.nearest.set_cpu_search_kernel``). The figures
are the best of the runs, so load from other processes (printed) inflates them less, and the ratios compare calls
taken seconds apart. Floor: ``2 N K (d + 1)`` FLOPs at the matmul's FLOP/s. ``benchmarks/run_all.py`` uses
``time_interleaved`` for its "hf_vq fused (opt-in)" rows.
"""

import argparse
import os
import time


def time_interleaved(n: int, k: int, d: int, runs: int = 5, matmul_size: int = 2048) -> dict:
    """Best-of-``runs`` seconds of the matmul, the tiled and the fused search; the fused entry is
    ``{"error": ...}`` when its kernel cannot be built (no C compiler), and the others are still timed."""
    import torch

    from hf_vq.quantizers import nearest
    from hf_vq.quantizers.fused_search import KernelBuildError

    generator = torch.Generator().manual_seed(0)
    vectors, codebook = torch.randn(n, d, generator=generator), torch.randn(k, d, generator=generator)
    a, b = torch.randn(matmul_size, matmul_size), torch.randn(matmul_size, matmul_size)
    kernels = ["tiled", "fused"]
    result = {"n": n, "k": k, "d": d, "runs": runs, "load_before": os.getloadavg()}
    previous = nearest.get_cpu_search_kernel()
    try:
        nearest.set_cpu_search_kernel("fused")
    except KernelBuildError as error:
        result["fused"] = {"error": str(error).splitlines()[0]}
        kernels.remove("fused")
    best = {name: float("inf") for name in ["matmul", *kernels]}
    indices = {}
    try:
        for _ in range(runs + 1):  # the first run warms up and is not counted
            timed = {}
            start = time.perf_counter()
            torch.mm(a, b)
            timed["matmul"] = time.perf_counter() - start
            for name in kernels:
                nearest.set_cpu_search_kernel(name)
                start = time.perf_counter()
                indices[name] = nearest.nearest_code(vectors, codebook)
                timed[name] = time.perf_counter() - start
            if _ > 0:
                best = {name: min(best[name], timed[name]) for name in best}
    finally:
        nearest.set_cpu_search_kernel(previous)
    flops_per_second = 2 * matmul_size**3 / best["matmul"]
    floor = 2 * n * k * (d + 1) / flops_per_second
    result.update(matmul_flops_per_second=flops_per_second, floor=floor, load_after=os.getloadavg())
    for name in kernels:
        result[name] = {"seconds": best[name], "over_floor": best[name] / floor}
    if "fused" in kernels:
        result["fused"]["indices_differ_from_tiled"] = int((indices["fused"] != indices["tiled"]).sum())
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["16384x16384", "4096x100000"], help="VECTORSxCODES")
    parser.add_argument("--dims", nargs="+", type=int, default=[8])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--every-dim", action="store_true", help="run the fused kernel above FUSED_MAX_DIM too")
    args = parser.parse_args(argv)
    import torch

    from hf_vq.quantizers import nearest

    if args.every_dim:
        nearest.FUSED_MAX_DIM = 1 << 30

    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()}")
    print("| vectors x codes | dim | matmul GFLOP/s | floor s | tiled s | tiled x floor | fused s | fused x floor "
          "| tiled / fused | indices differing |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        n, k = map(int, size.split("x"))
        for d in args.dims:
            r = time_interleaved(n, k, d, args.runs)
            tiled, fused = r["tiled"], r["fused"]
            if "error" in fused:
                fused_cells = f"{fused['error']} | - | - | -"
            else:
                fused_cells = (f"{fused['seconds']:.4f} | {fused['over_floor']:.2f}x | "
                               f"{tiled['seconds'] / fused['seconds']:.2f}x | {fused['indices_differ_from_tiled']}")
            print(f"| {n:,} x {k:,} | {d} | {r['matmul_flops_per_second'] / 1e9:.1f} | {r['floor']:.4f} | "
                  f"{tiled['seconds']:.4f} | {tiled['over_floor']:.2f}x | {fused_cells} |", flush=True)
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
