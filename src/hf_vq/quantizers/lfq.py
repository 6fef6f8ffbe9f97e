"""Lookup-free quantization (MAGVIT-v2): each channel is quantised to its sign."""

import torch
import torch.nn as nn

from .behaviours import EntropyRegularization
from .output import QuantizerOutput, batch_perplexity


class LFQ(nn.Module):
    """``q = sign(z)`` per channel (codes in {-1, 1}^dim, 2**dim of them).

    Index = sum_i [z_i > 0] * 2**i. Loss: ``beta * mean((z - sg(q))^2)`` plus, when
    ``entropy_weight > 0``, the entropy regulariser over the implicit codebook with
    affinity ``2 z.c / temperature`` (as the 64x64 benchmark code).
    """

    def __init__(self, dim: int, beta: float = 0.25, entropy_weight: float = 0.1, entropy_temperature: float = 0.01):
        super().__init__()
        if dim > 20:
            raise ValueError(f"LFQ dim {dim} means 2**{dim} codes; use dim <= 20.")
        self.dim = dim
        self.codebook_size = 2**dim
        self.beta = beta
        self.entropy = EntropyRegularization(weight=entropy_weight, temperature=entropy_temperature)

    def _basis(self, device) -> torch.Tensor:
        return 2 ** torch.arange(self.dim, dtype=torch.long, device=device)

    def implicit_codebook(self, device=None) -> torch.Tensor:
        return self.indices_to_codes(torch.arange(self.codebook_size, device=device))

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        if z.shape[-1] != self.dim:
            raise ValueError(f"LFQ expects channel-last input (..., {self.dim}); got {tuple(z.shape)}.")
        codes = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
        loss_terms = {"commitment": self.beta * torch.mean((z - codes) ** 2)}
        if self.entropy.weight > 0:
            # ||z - c||^2 = ||z||^2 + dim - 2 z.c: the constant terms drop out of the softmax.
            loss_terms["entropy"] = self.entropy.weight * self.entropy.entropy_loss(
                z.reshape(-1, self.dim), self.implicit_codebook(z.device).to(z.dtype)
            )
        indices = ((codes > 0).long() * self._basis(z.device)).sum(-1)
        quantized = codes + (z - z.detach())
        return QuantizerOutput(
            quantized=quantized,
            indices=indices,
            loss=sum(loss_terms.values()),
            loss_terms=loss_terms,
            perplexity=batch_perplexity(indices, self.codebook_size),
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"indices must be an integer tensor; got {indices.dtype}.")
        bits = (indices.long()[..., None] // self._basis(indices.device)) % 2
        return bits.float() * 2 - 1

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size={self.codebook_size}, beta={self.beta}"
