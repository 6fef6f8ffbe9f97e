"""Codebook usage and perplexity accumulated over a whole evaluation set."""

import math

import torch

from .distributed import all_reduce_sum


class CodebookUsage:
    """Accumulate code counts; ``compute()`` gives usage fraction and perplexity.

    usage = fraction of the K codes hit at least once; perplexity = exp(entropy of the
    normalised histogram). ``compute(all_reduce=True)`` sums counts over processes first.
    """

    def __init__(self, codebook_size: int):
        self.codebook_size = codebook_size
        self.counts = torch.zeros(codebook_size, dtype=torch.float64)

    def update(self, indices: torch.Tensor) -> None:
        flat = indices.detach().reshape(-1).long()
        if flat.numel() and (flat.min() < 0 or flat.max() >= self.codebook_size):
            raise ValueError(f"indices out of range [0, {self.codebook_size}): min {int(flat.min())}, max {int(flat.max())}.")
        self.counts += torch.bincount(flat.cpu(), minlength=self.codebook_size).double()

    def compute(self, all_reduce: bool = False) -> dict:
        counts = self.counts
        if all_reduce:
            counts = all_reduce_sum(counts.clone())
        total = counts.sum().item()
        if total == 0:
            return {"codebook_usage": 0.0, "perplexity": 0.0, "num_tokens": 0}
        probs = counts / total
        nz = probs[probs > 0]
        entropy = -(nz * nz.log()).sum().item()
        return {
            "codebook_usage": float((counts > 0).double().mean().item()),
            "perplexity": math.exp(entropy),
            "num_tokens": int(total),
        }
