"""Bounded-memory nearest-code search, tiled over vectors and codes.

The search never materialises the full (vectors x codebook) score matrix. Scores are computed
one tile of ``rows x codes`` at a time (by default 256 vectors x 4,096 codes, 4 MiB of float32,
so a tile is still in cache when it is reduced, instead of a 32 MiB chunk that is not) and a running minimum with its
index is kept per vector. Nothing is kept for backward (the search runs without autograd;
gradients reach the codebook only through the gathered codes).

Why the reduction is two-level: on CPU ``torch.min(dim=...)`` with indices runs about ten
times slower per element than ``torch.amin`` (values only, vectorised), and it would cost
more than the matmul itself. So each tile is reduced to the minimum of every group of
``GROUP`` consecutive codes with ``amin``, the best group is found with ``torch.min``
(1/``GROUP`` of the elements) and only that group's scores, read back from the same tile,
are searched for the index. Both ``torch.min`` calls return the first index of a tie, and
a later tile replaces the running best only when strictly smaller, so the result is the
first index of the minimum score, as a plain ``argmin`` over all codes would give.
"""

import torch

# Bound for callers that chunk their own (rows x codebook) work (IBQ's soft assignment,
# k-means): 32 MiB of float32 per chunk.
DEFAULT_CHUNK_ELEMENTS = 8 * 1024 * 1024

# One score tile: 256 vectors x 4,096 codes (4 MiB of float32). On the benchmark machine
# (2-core EPYC, 512 KiB L2 per core, 32 MiB L3) tiles from 256 x 1,024 to 1,024 x 4,096 ran
# within 15% of each other at 16,384 x 16,384 x 8; this one was among the fastest.
TILE_ROWS = 256
TILE_CODES = 4096
# Codes per group in the two-level reduction (tiles narrower than this use torch.min directly).
GROUP = 64


def _cache_tiles(device: torch.device) -> bool:
    """Cache-sized tiles on CPU. On accelerators each tile op is a kernel launch and the row
    minimum with indices is fast, so there a tile is as many rows of the whole codebook as
    ``max_elements`` allows (a few large launches instead of thousands of small ones)."""
    return device.type == "cpu"


def _tile_shape(num_codes: int, max_elements: int, cache_tiles: bool) -> tuple:
    if not cache_tiles:
        return max(1, max_elements // max(num_codes, 1)), max(num_codes, 1)
    codes = max(1, min(num_codes, TILE_CODES, max_elements))
    rows = max(1, min(TILE_ROWS, max_elements // codes))
    return rows, codes


def _tile_argmin(scores: torch.Tensor, cache_tiles: bool) -> tuple:
    """(minimum, first index of the minimum) of each row of a score tile."""
    rows, width = scores.shape
    if width < GROUP or not cache_tiles:
        return torch.min(scores, dim=1)
    full = width - width % GROUP
    group_minima = torch.amin(scores[:, :full].reshape(rows, full // GROUP, GROUP), dim=2)
    best, group = torch.min(group_minima, dim=1)
    columns = group[:, None] * GROUP + torch.arange(GROUP, device=scores.device)
    _, offset = torch.min(torch.gather(scores, 1, columns), dim=1)
    index = columns.gather(1, offset[:, None])[:, 0]
    if full < width:  # the last < GROUP codes of the tile: later codes win only when strictly smaller
        rest_best, rest_index = torch.min(scores[:, full:], dim=1)
        better = rest_best < best
        best = torch.where(better, rest_best, best)
        index = torch.where(better, rest_index + full, index)
    return best, index


def _first_argmin_of_products(left: torch.Tensor, right: torch.Tensor, max_elements: int) -> torch.Tensor:
    """First index of the minimum of each row of ``left @ right`` (N, K), tile by tile."""
    num_rows, num_codes = left.shape[0], right.shape[1]
    cache_tiles = _cache_tiles(left.device)
    tile_rows, tile_codes = _tile_shape(num_codes, max_elements, cache_tiles)
    out = torch.empty(num_rows, dtype=torch.long, device=left.device)
    scores = torch.empty(min(tile_rows, num_rows), tile_codes, dtype=left.dtype, device=left.device)
    for start in range(0, num_rows, tile_rows):
        count = min(tile_rows, num_rows - start)
        block = left[start : start + count]
        best = best_index = None
        for first_code in range(0, num_codes, tile_codes):
            width = min(tile_codes, num_codes - first_code)
            tile = scores[:count, :width]
            torch.mm(block, right[:, first_code : first_code + width], out=tile)
            value, index = _tile_argmin(tile, cache_tiles)
            if best is None:
                best, best_index = value, index
            else:
                better = value < best
                best = torch.where(better, value, best)
                best_index = torch.where(better, index + first_code, best_index)
        out[start : start + count] = best_index
    return out


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
    ``[v, 1] @ [[-2 C^T], [||c||^2]]``, so no broadcast add pass is needed. The largest
    temporary is one score tile of at most ``min(max_elements, TILE_ROWS * TILE_CODES)`` floats.
    """
    if vectors.ndim != 2 or codebook.ndim != 2 or vectors.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"nearest_code expects vectors (N, d) and codebook (K, d) with the same d; got "
            f"{tuple(vectors.shape)} and {tuple(codebook.shape)}."
        )
    vectors = vectors.to(codebook.dtype)
    augmented_codebook = torch.cat([-2 * codebook.t(), codebook.pow(2).sum(1)[None]], dim=0).contiguous()
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
