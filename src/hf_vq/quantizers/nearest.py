"""Bounded-memory nearest-code search, tiled over vectors and codes.

The search never materialises the full (vectors x codebook) score matrix. On CPU, scores are
computed one tile of ``codes x vectors`` at a time (by default 2,048 codes x 256 vectors, 2 MiB
of float32, so a tile is still in cache when it is reduced) by one matmul of augmented matrices,
and each tile is reduced at once to the minimum of every group of ``GROUP`` consecutive codes.
Nothing is kept for backward (the search runs without autograd; gradients reach the codebook
only through the gathered codes).

Why this shape of reduction: on CPU ``torch.min(dim=...)`` with indices runs about ten times
slower per element than ``torch.amin`` (values only, vectorised), and would cost more than the
matmul itself. So the only full pass over a tile is ``amin`` over groups of codes; codes run
along the tile's rows, so that pass is an elementwise minimum of contiguous rows of scores
(vectors x codes tiles would need a horizontal reduction of each row instead, measured slower,
as was the matmul in that orientation: its output rows are only 9 floats deep either way).
Once a block of vectors has met every tile, ``torch.min`` with indices finds the first tile and
then the first group holding each vector's minimum (1/``GROUP`` of the elements), and that
group's ``GROUP`` scores are computed again from the codes (a few products per vector) for the
index inside it. Every ``torch.min`` returns the first index of a tie, so the result is the
first index of the minimum score, as a plain ``argmin`` over all codes would give. (The group's
scores are recomputed with a different summation order than the matmul's, so two codes whose
float32 scores differ only by rounding may resolve either way: "up to ties".)

Threads: from ``WORKERS_MIN_PRODUCT`` multiply-adds on, the rows are split into whole blocks per thread of
``torch.get_num_threads()``, each searched by a worker that runs torch on one thread (``utils/cpu_workers.py``):
torch's own threads meet at a barrier after every one of the search's short ops, and when another process holds a
core each barrier waits for it (17-35x slower, ``benchmarks/contention.py``). Smaller calls keep torch's threads
(the workers were slower there on an idle machine).

Where the time goes (dim 8, one thread, 16,384 or 100,000 codes): mostly the matmul itself. Its
inner dimension is only ``d + 1 = 9``, so each output float costs 18 FLOPs and must be stored;
BLAS ran such a skinny product at 50-60% of the FLOP/s of a large square matmul, i.e. at
1.7-2.1x the ``2 N K (d + 1)`` FLOPs floor by itself, and the one ``amin`` pass over the scores
adds most of the rest: the whole search measured 2.7-3.3x the floor (the previous vectors x
codes tiles with a per-tile index search: 4.0-4.8x). ``benchmarks/run_all.py`` measures both.

An opt-in fused CPU kernel closes that gap: ``set_cpu_search_kernel("fused")`` (or ``HF_VQ_CPU_SEARCH=fused``
in the environment) compiles ``kernels/nearest_code.c`` with the system C compiler on first use (see
``fused_search.py``) and reduces the scores while they are still in registers: about 1.0-1.2x the floor on the
same machine, same first-index rule, and no temporaries beyond packed copies of the inputs and 4 KiB of scores
per thread (``max_elements`` is not needed). It is not the default because it needs a C compiler at run time;
"tiled" (the default) needs nothing. Where it applies: CPU tensors of float32 or float64 with an inner dimension
(``d + 1`` for ``nearest_code``, ``d`` for ``max_inner_product``) of at most ``FUSED_MAX_DIM`` (1,025, the
largest measured: it was never slower than the tiled path up to there); other calls run the tiled path, as do
other devices and dtypes. Asking for "fused" where no compiler works raises ``KernelBuildError``, never a quiet
switch back to "tiled".
"""

import os

import torch

from ..utils.cpu_workers import run_row_parts

# Bound for callers that chunk their own (rows x codebook) work (IBQ's soft assignment,
# k-means): 32 MiB of float32 per chunk.
DEFAULT_CHUNK_ELEMENTS = 8 * 1024 * 1024

# One score tile: 2,048 codes x 256 vectors (2 MiB of float32). On the benchmark machine
# (2-core EPYC, 512 KiB L2 per core, 32 MiB L3) tiles of 1,024-2,048 codes x 256-512 vectors
# were the fastest at 16,384 x 16,384 and 4,096 x 100,000 codes x dim 8; 4,096 x 256 and
# 8,192 x 128 ran 10-40% slower.
TILE_ROWS = 256
TILE_CODES = 2048
# Codes per group of the reduction (a codebook smaller than this is one group).
GROUP = 64

# The tiled search runs in single-threaded workers (utils/cpu_workers.py) from this many multiply-adds
# (rows x codes x (d + 1)) on. Measured on the 2-core benchmark machine at 2 threads, interleaved in one process:
# idle, the workers were 1.08-1.20x faster than torch's own threads from 2.4e9 up (16,384 x 16,384 x 8,
# 4,096 x 100,000 x 8, 2,048 x 16,384 x 256) but 0.57-0.96x below 1e9 (2,048-4,096 x 16,384 x 8, 4,096 x 1,024 x 64:
# each worker then ran about as slowly as one thread doing all the rows); with another process holding a core
# they were 17-35x faster at 16,384 x 16,384 and 4,096 x 100,000. Smaller calls keep torch's threads.
WORKERS_MIN_PRODUCT = 2**31

CPU_SEARCH_KERNELS = ("tiled", "fused")
CPU_SEARCH_ENVIRONMENT_VARIABLE = "HF_VQ_CPU_SEARCH"
# The fused kernel's largest inner dimension: the largest measured. Against the tiled path (benchmarks/
# search_kernels.py --every-dim, interleaved, one thread, d = 8 ... 1024 at 16,384 or 2,048 vectors x 16,384 codes)
# it was 2.4-2.7x faster at d = 8, 1.9-2.4x at 16, 1.4-1.7x at 32-64 and 1.2-1.7x at 128-1024 (BLAS's product
# runs near the square-matmul rate there, and so do the fused FMAs): it never lost; above d = 1024 it is unmeasured.
FUSED_MAX_DIM = 1025
_cpu_search_kernel = None  # None: not set in this process; the environment variable, else "tiled"


def _checked_kernel_name(name, where: str) -> str:
    if name not in CPU_SEARCH_KERNELS:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, CPU_SEARCH_KERNELS))}; got {name!r}.")
    return name


def set_cpu_search_kernel(name: str) -> None:
    """Choose the CPU search of ``nearest_code`` / ``max_inner_product`` for this process: "tiled" (default: PyTorch
    ops only) or "fused" (the C kernel of ``fused_search.py``, compiled here and now so that a missing compiler
    fails at this call, with ``KernelBuildError``, rather than at the first search)."""
    global _cpu_search_kernel
    _checked_kernel_name(name, "set_cpu_search_kernel's name")
    if name == "fused":
        from .fused_search import load_kernel

        load_kernel()
    _cpu_search_kernel = name


def get_cpu_search_kernel() -> str:
    """The CPU search in use: the one set in this process, else ``$HF_VQ_CPU_SEARCH``, else "tiled"."""
    if _cpu_search_kernel is not None:
        return _cpu_search_kernel
    return _checked_kernel_name(os.environ.get(CPU_SEARCH_ENVIRONMENT_VARIABLE, "tiled"),
                                f"${CPU_SEARCH_ENVIRONMENT_VARIABLE}")


def _fused_applies(left: torch.Tensor, right: torch.Tensor) -> bool:
    return (left.device.type == "cpu" and left.dtype in (torch.float32, torch.float64) and right.dtype == left.dtype
            and left.shape[1] <= FUSED_MAX_DIM and right.shape[1] > 0 and get_cpu_search_kernel() == "fused")


def _cache_tiles(device: torch.device) -> bool:
    """Cache-sized tiles and the group-minimum reduction on CPU. On accelerators each tile op is a
    kernel launch and the row minimum with indices is fast, so there a chunk is as many rows of the
    whole codebook as ``max_elements`` allows, reduced with ``torch.min`` (a few large launches)."""
    return device.type == "cpu"


def _first_argmin_by_chunks(left: torch.Tensor, right: torch.Tensor, max_elements: int) -> torch.Tensor:
    """First index of the minimum of each row of ``left @ right``, whole-codebook rows at a time."""
    num_rows, num_codes = left.shape[0], right.shape[1]
    rows = max(1, max_elements // max(num_codes, 1))
    out = torch.empty(num_rows, dtype=torch.long, device=left.device)
    for start in range(0, num_rows, rows):
        out[start : start + rows] = torch.min(left[start : start + rows] @ right, dim=1).indices
    return out


def _padded_to_groups(right: torch.Tensor, group: int) -> torch.Tensor:
    """The columns (codes) of ``right`` (D, K) as (K', D) rows, K' the next multiple of ``group``; the extra
    rows repeat the last code (they can only tie with it, and their index is mapped back to it)."""
    rows = right.t()
    missing = -rows.shape[0] % group
    if missing:
        rows = torch.cat([rows, rows[-1:].expand(missing, -1)])
    return rows.contiguous()


def _first_argmin_of_products(left: torch.Tensor, right: torch.Tensor, max_elements: int) -> torch.Tensor:
    """First index of the minimum of each row of ``left @ right`` (N, K), tile by tile (or by the fused kernel)."""
    if _fused_applies(left, right):
        from .fused_search import load_kernel

        return load_kernel().first_argmin(left, right)
    if not _cache_tiles(left.device):
        return _first_argmin_by_chunks(left, right, max_elements)
    num_rows, num_codes = left.shape[0], right.shape[1]
    group = max(1, min(GROUP, num_codes, max_elements))
    codes = _padded_to_groups(right, group)  # (K', D)
    tile_codes = min(codes.shape[0], max(group, min(TILE_CODES, max_elements) // group * group))
    tile_rows = max(1, min(TILE_ROWS, num_rows, max_elements // tile_codes))
    left_t = left.t().contiguous()  # (D, N): a block of rows is a (D, rows) view, the mm's right operand
    grouped_codes_t = codes.view(-1, group, codes.shape[1]).transpose(1, 2).contiguous()  # (groups, D, group)
    out = torch.empty(num_rows, dtype=torch.long, device=left.device)

    def search_rows(start: int, count: int) -> None:
        _tiled_search(left, left_t, codes, grouped_codes_t, tile_codes, tile_rows, out, start, count)

    if num_rows * codes.shape[0] * left.shape[1] >= WORKERS_MIN_PRODUCT:
        # Whole blocks of rows per worker thread, each on one core with no barrier between its many short ops
        # (torch's own threads stall at every op when another process holds a core: utils/cpu_workers.py).
        run_row_parts(num_rows, tile_rows, search_rows)
    else:
        search_rows(0, num_rows)
    return out.clamp_(max=num_codes - 1)


def _tiled_search(left, left_t, codes, grouped_codes_t, tile_codes, tile_rows, out, first_row, num_rows) -> None:
    """Rows ``first_row`` ... ``+ num_rows`` of the tiled search, written into ``out`` (with its own tiles)."""
    padded_codes, group = codes.shape[0], grouped_codes_t.shape[2]
    num_tiles = -(-padded_codes // tile_codes)
    groups_per_tile = tile_codes // group
    # Every tile's group minima for one block of rows, (tile, group, row): each tile writes one
    # contiguous slab; a narrower last tile leaves +inf in the groups it does not have.
    group_minima = torch.full((num_tiles, groups_per_tile, tile_rows), float("inf"), dtype=left.dtype,
                              device=left.device)
    scores = torch.empty(tile_codes, tile_rows, dtype=left.dtype, device=left.device)
    for start in range(first_row, first_row + num_rows, tile_rows):
        count = min(tile_rows, first_row + num_rows - start)
        block_t = left_t[:, start : start + count]
        minima = group_minima[:, :, :count]
        for tile_index in range(num_tiles):
            first = tile_index * tile_codes
            width = min(tile_codes, padded_codes - first)
            tile = scores[:width, :count]
            torch.mm(codes[first : first + width], block_t, out=tile)
            torch.amin(tile.view(width // group, group, count), dim=1, out=minima[tile_index, : width // group])
        # the first tile holding a row's minimum, then its first group holding it (first index on ties)
        best_tile = torch.min(torch.amin(minima, dim=1), dim=0).indices
        rows = torch.arange(count, device=left.device)
        best_group = best_tile * groups_per_tile + torch.min(minima[best_tile, :, rows], dim=1).indices
        # that group's scores again (a (1 x D) @ (D x group) product per row), so no tile is kept or read back
        block = left[start : start + count]
        group_scores = torch.bmm(block[:, None, :], grouped_codes_t.index_select(0, best_group))[:, 0]
        out[start : start + count] = best_group * group + torch.min(group_scores, dim=1).indices


@torch.no_grad()
def nearest_code(
    vectors: torch.Tensor,
    codebook: torch.Tensor,
    max_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Index of the closest codebook row (squared Euclidean) for each row of ``vectors``.

    ``vectors``: (N, d); ``codebook``: (K, d). Returns a LongTensor (N,), the first index on ties.
    ``argmin ||v - c||^2 = argmin (||c||^2 - 2 v.c)``: the ``||v||^2`` term is constant per
    row, so it is dropped. The rest is one matmul of augmented matrices,
    ``[v, 1] @ [[-2 C^T], [||c||^2]]``, so no broadcast add pass is needed. The temporaries are,
    per CPU worker thread (``torch.get_num_threads()`` of them, each searching whole blocks of rows),
    one score tile of at most ``min(max_elements, TILE_ROWS * TILE_CODES)`` floats and the group
    minima of one block of rows (``K / GROUP`` floats a row); and copies of the inputs' size.
    """
    if vectors.ndim != 2 or codebook.ndim != 2 or vectors.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"nearest_code expects vectors (N, d) and codebook (K, d) with the same d; got "
            f"{tuple(vectors.shape)} and {tuple(codebook.shape)}."
        )
    vectors = vectors.to(codebook.dtype)
    # built as (K, d + 1) rows and passed transposed: the CPU tiles read it as rows without another copy
    augmented_codebook = torch.cat([-2 * codebook, codebook.pow(2).sum(1, keepdim=True)], dim=1).t()
    ones = torch.ones(vectors.shape[0], 1, dtype=codebook.dtype, device=codebook.device)
    augmented_vectors = torch.cat([vectors, ones], dim=1)
    return _first_argmin_of_products(augmented_vectors, augmented_codebook, max_elements)


@torch.no_grad()
def max_inner_product(vectors: torch.Tensor, codebook: torch.Tensor, max_elements: int = DEFAULT_CHUNK_ELEMENTS):
    """Index of the codebook row with the largest ``v . c`` for each row of ``vectors`` (first on ties).

    The same tiled search on ``v . (-c)`` (negation is exact, so the order and the ties are kept).
    """
    if vectors.ndim != 2 or codebook.ndim != 2 or vectors.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"max_inner_product expects vectors (N, d) and codebook (K, d) with the same d; got "
            f"{tuple(vectors.shape)} and {tuple(codebook.shape)}."
        )
    negated = (-codebook.t()).contiguous()
    return _first_argmin_of_products(vectors.to(codebook.dtype), negated, max_elements)
