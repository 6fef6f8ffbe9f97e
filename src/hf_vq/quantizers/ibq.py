"""Index backpropagation quantization (IBQ, Shi et al. 2024, TencentARC/SEED-Voken), as the
ImageNet 64x64 benchmark code implements it (``models/quantizer/index_backpropagation_quantizer.py``)."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .base import Quantizer
from .entropy import codebook_entropy_loss
from .nearest import DEFAULT_CHUNK_ELEMENTS, max_inner_product


def _chunk_rows(codebook_size: int, max_elements: int) -> int:
    return max(1, max_elements // max(codebook_size, 1))


def _soft_codes(chunk: torch.Tensor, codebook: torch.Tensor, frozen_codebook: torch.Tensor) -> torch.Tensor:
    return torch.softmax(chunk @ codebook.t(), dim=1) @ frozen_codebook


class IBQ(Quantizer):
    """Codes are picked by the largest logit ``z . c`` and trained through the soft assignment.

    Forward: ``index = argmax_k z . c_k``, output = ``c_index`` exactly (so ``decode_indices``
    equals ``decode``). Backward, as the benchmark's ``(onehot - sg(softmax) + softmax) @ C``:
    the gradient ``g`` of the output reaches the chosen code (``onehot^T g``) and, through
    ``softmax(z C^T) @ sg(C)``, the logits, hence ``z`` and every code. Here that is
    ``code + (s - sg(s))`` with ``s = softmax(z C^T) @ sg(C)``, computed over chunks of vectors
    under activation checkpointing (no (N, K) matrix is kept for backward).

    Loss terms: ``commitment = beta * mse(z, sg(code))``, ``codebook = mse(sg(z), code)``,
    ``double_quantization = mse(output, z)`` (the benchmark adds it to its codebook term,
    weight 1) and, when ``entropy_weight > 0``, the entropy penalty over ``softmax(z C^T / T)``.
    Codebook init U(-1/K, 1/K).
    """

    def __init__(self, dim: int, codebook_size: int, beta: float = 0.25, entropy_weight: float = 0.1,
                 entropy_temperature: float = 0.01, max_search_elements: int = DEFAULT_CHUNK_ELEMENTS):
        super().__init__()
        for name, value in (("dim", dim), ("codebook_size", codebook_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"IBQ {name} must be a positive integer; got {value!r}.")
        if beta < 0 or entropy_weight < 0 or entropy_temperature <= 0:
            raise ValueError(
                f"IBQ needs beta >= 0, entropy_weight >= 0 and entropy_temperature > 0; got {beta}, "
                f"{entropy_weight}, {entropy_temperature}."
            )
        self.dim = dim
        self.codebook_dim = dim
        self.codebook_size = codebook_size
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.max_search_elements = max_search_elements
        self.codebook = nn.Parameter(torch.empty(codebook_size, dim))
        self.reset_codebook()

    @torch.no_grad()
    def reset_codebook(self) -> None:
        nn.init.uniform_(self.codebook, -1.0 / self.codebook_size, 1.0 / self.codebook_size)

    def soft_codes(self, vectors: torch.Tensor) -> torch.Tensor:
        """``softmax(v C^T) @ sg(C)`` (N, dim), chunked; its gradient reaches ``v`` and ``C`` through the logits."""
        rows = _chunk_rows(self.codebook_size, self.max_search_elements)
        frozen = self.codebook.detach()
        chunks = [checkpoint(_soft_codes, vectors[start : start + rows], self.codebook, frozen, use_reentrant=False)
                  for start in range(0, vectors.shape[0], rows)]
        return torch.cat(chunks)

    def _quantize(self, z: torch.Tensor, with_losses: bool):
        indices = max_inner_product(z.detach(), self.codebook.detach(), self.max_search_elements)
        codes = F.embedding(indices, self.codebook)
        if torch.is_grad_enabled() and (z.requires_grad or self.codebook.requires_grad):
            soft = self.soft_codes(z)
            quantized = codes + (soft - soft.detach())
        else:
            quantized = codes  # no gradient can flow: skip the (N, K) softmax
        loss_terms = {}
        if with_losses:
            loss_terms["commitment"] = self.beta * F.mse_loss(z, codes.detach())
            loss_terms["codebook"] = F.mse_loss(codes, z.detach())
            loss_terms["double_quantization"] = F.mse_loss(quantized, z)
            if self.entropy_weight > 0:
                loss_terms["entropy"] = self.entropy_weight * codebook_entropy_loss(
                    z, self.codebook, self.entropy_temperature, affinity="dot"
                )
        return quantized, indices, loss_terms

    def _indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding(indices, self.codebook)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, codebook_size={self.codebook_size}, beta={self.beta}, "
                f"entropy_weight={self.entropy_weight}, entropy_temperature={self.entropy_temperature}")


__all__ = ["IBQ", "max_inner_product"]
