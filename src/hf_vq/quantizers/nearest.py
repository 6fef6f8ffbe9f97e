"""Bounded-memory nearest-code search.

The search never materialises the full (vectors x codebook) distance matrix: vectors are
processed in chunks so the largest temporary is ``chunk_size x codebook_size`` floats,
and nothing of it is kept for backward (the search runs without autograd; gradients
reach the codebook only through the gathered codes).
"""

import torch

# 64 MiB of float32 distances per chunk by default.
DEFAULT_CHUNK_ELEMENTS = 16 * 1024 * 1024


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
    row, so it is dropped, and one fused ``addmm`` per chunk does the work.
    """
    if vectors.ndim != 2 or codebook.ndim != 2 or vectors.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"nearest_code expects vectors (N, d) and codebook (K, d) with the same d; got "
            f"{tuple(vectors.shape)} and {tuple(codebook.shape)}."
        )
    vectors = vectors.to(codebook.dtype)
    codebook_sq = codebook.pow(2).sum(dim=1)
    codebook_t = codebook.t()
    rows = _chunk_rows(codebook.shape[0], max_elements)
    out = torch.empty(vectors.shape[0], dtype=torch.long, device=vectors.device)
    # One scores buffer reused by every chunk: no allocation (or page faulting) per chunk.
    scores = torch.empty(min(rows, vectors.shape[0]), codebook.shape[0], dtype=codebook.dtype, device=codebook.device)
    for start in range(0, vectors.shape[0], rows):
        chunk = vectors[start : start + rows]
        block = scores[: chunk.shape[0]]
        torch.addmm(codebook_sq, chunk, codebook_t, beta=1.0, alpha=-2.0, out=block)
        torch.argmin(block, dim=1, out=out[start : start + chunk.shape[0]])
    return out


@torch.no_grad()
def closest_vector_per_code(
    vectors: torch.Tensor,
    codebook: torch.Tensor,
    max_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """For each code, the index of its closest vector (the transpose search), chunked over codes."""
    return nearest_code(codebook, vectors, max_elements=max_elements)
