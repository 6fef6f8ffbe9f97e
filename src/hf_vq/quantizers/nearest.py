"""Bounded-memory nearest-code search.

The search never materialises the full (vectors x codebook) distance matrix: vectors are
processed in chunks so the largest temporary is ``chunk_size x codebook_size`` floats,
and nothing of it is kept for backward (the search runs without autograd; gradients
reach the codebook only through the gathered codes).
"""

import torch

# 32 MiB of float32 scores per chunk by default: large enough for an efficient matmul, small
# enough that the scores are still in cache when the row minimum reads them.
DEFAULT_CHUNK_ELEMENTS = 8 * 1024 * 1024


def _chunk_rows(codebook_size: int, max_elements: int) -> int:
    return max(1, max_elements // max(codebook_size, 1))


@torch.no_grad()
def nearest_code(
    vectors: torch.Tensor,
    codebook: torch.Tensor,
    max_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Index of the closest codebook row (squared Euclidean) for each row of ``vectors``.

    ``vectors``: (N, d); ``codebook``: (K, d). Returns a LongTensor (N,).
    ``argmin ||v - c||^2 = argmin (||c||^2 - 2 v.c)``: the ``||v||^2`` term is constant per
    row, so it is dropped. The rest is one matmul of augmented matrices,
    ``[v, 1] @ [[-2 C^T], [||c||^2]]``, so no broadcast add pass is needed, and the row
    minimum uses ``torch.min`` (faster than ``argmin`` on CPU; both return the first index
    of a tie). Scores live in one buffer reused by every chunk.
    """
    if vectors.ndim != 2 or codebook.ndim != 2 or vectors.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"nearest_code expects vectors (N, d) and codebook (K, d) with the same d; got "
            f"{tuple(vectors.shape)} and {tuple(codebook.shape)}."
        )
    vectors = vectors.to(codebook.dtype)
    augmented_codebook = torch.cat([-2 * codebook.t(), codebook.pow(2).sum(1)[None]], dim=0).contiguous()
    rows = _chunk_rows(codebook.shape[0], max_elements)
    num_vectors = vectors.shape[0]
    out = torch.empty(num_vectors, dtype=torch.long, device=vectors.device)
    scores = torch.empty(min(rows, num_vectors), codebook.shape[0], dtype=codebook.dtype, device=codebook.device)
    minima = torch.empty(min(rows, num_vectors), dtype=codebook.dtype, device=codebook.device)
    ones = torch.ones(min(rows, num_vectors), 1, dtype=codebook.dtype, device=codebook.device)
    for start in range(0, num_vectors, rows):
        count = min(rows, num_vectors - start)
        augmented_chunk = torch.cat([vectors[start : start + count], ones[:count]], dim=1)
        torch.mm(augmented_chunk, augmented_codebook, out=scores[:count])
        torch.min(scores[:count], dim=1, out=(minima[:count], out[start : start + count]))
    return out
