"""Lookup-free quantization (MAGVIT-v2): each channel is quantised to its sign."""

import torch

from .base import Quantizer, mixed_radix_indices
from .entropy import codebook_entropy_loss

#: 2**20 implicit codes: the entropy term compares every vector with every code.
MAX_LFQ_DIM = 20


class LFQ(Quantizer):
    """``q = sign(z)`` per channel (codes in {-1, 1}^dim, 2**dim of them).

    Index = sum_i [z_i > 0] * 2**i. Loss: ``beta * mean((z - sg(q))^2)`` plus, when
    ``entropy_weight > 0``, the entropy regulariser (:func:`codebook_entropy_loss`) over the
    implicit codebook with affinity ``2 z.c / temperature`` (as the 64x64 benchmark code).
    """

    def __init__(self, dim: int, beta: float = 0.25, entropy_weight: float = 0.1, entropy_temperature: float = 0.01):
        super().__init__()
        self.codebook_size = self.codebook_size_for(dim)
        self.dim = dim
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        # index = sum_i bit_i 2**i; a plain list (nothing to save), as FSQ's basis
        self.bit_weights = [2**i for i in range(dim)]

    @staticmethod
    def codebook_size_for(dim: int) -> int:
        """Number of codes of ``LFQ(dim)``: ``2 ** dim`` for ``1 <= dim <= 20``."""
        if not isinstance(dim, int) or not 1 <= dim <= MAX_LFQ_DIM:
            raise ValueError(
                f"LFQ dim (sign bits) must be an integer in [1, {MAX_LFQ_DIM}]; got {dim!r} "
                f"(dim d means 2**d codes)."
            )
        return 2**dim

    def _basis(self, device) -> torch.Tensor:
        return torch.tensor(self.bit_weights, dtype=torch.long, device=device)

    def implicit_codebook(self, device=None) -> torch.Tensor:
        return self._indices_to_codes(torch.arange(self.codebook_size, device=device))

    def _quantize(self, z: torch.Tensor, with_losses: bool):
        bits = (z > 0).to(torch.float32)
        codes = (bits * 2 - 1).to(z.dtype)  # +1 where z > 0, else -1 (exact in every float dtype)
        loss_terms = {}
        if with_losses:
            loss_terms["commitment"] = self.beta * torch.mean((z - codes) ** 2)
            if self.entropy_weight > 0:
                # ||z - c||^2 = ||z||^2 + dim - 2 z.c: the constant terms drop out of the softmax.
                loss_terms["entropy"] = self.entropy_weight * codebook_entropy_loss(
                    z, self.implicit_codebook(z.device).to(z.dtype), self.entropy_temperature
                )
        indices = mixed_radix_indices(bits, self.bit_weights)
        # straight-through: codes + (z - sg(z)), whose second term is exactly 0 when no gradient can flow
        quantized = codes + (z - z.detach()) if torch.is_grad_enabled() and z.requires_grad else codes
        return quantized, indices, loss_terms

    def _indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        bits = (indices[..., None] // self._basis(indices.device)) % 2
        return bits.float() * 2 - 1

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size={self.codebook_size}, beta={self.beta}"


__all__ = ["LFQ", "MAX_LFQ_DIM"]
