"""Finite Scalar Quantization (Mentzer et al. 2023)."""

import itertools
import math
from typing import Sequence

import torch

from .base import Quantizer, mixed_radix_indices


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round with straight-through gradients."""
    return torch.round(x) + (x - x.detach())


class FSQ(Quantizer):
    """Bound each channel to ``L_i`` values, round, and rescale to [-1, 1].

    ``bound(z) = tanh(z + shift) * half_l - offset`` with ``half_l = (L - 1)(1 + eps) / 2``,
    ``offset = 0.5`` for even L (0 for odd) and ``shift = atanh(offset / half_l)``; the
    rounded value lies in {-(L//2), ..., L - 1 - L//2} and is divided by ``L // 2``.
    The ``1 + eps`` (as the 64x64 benchmark code and vector-quantize-pytorch) keeps
    ``atanh(offset / half_l)`` finite for L = 2, where the paper's ``1 - eps`` gives
    atanh of a number above 1; rounding gives the same L values either way.
    The index is the mixed-radix number of the per-channel digits (bijective over the
    ``prod(levels)`` codes). There is no loss.
    """

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        self.codebook_size = self.codebook_size_for(levels)
        self.levels_list = [int(level) for level in levels]
        self.dim = len(self.levels_list)
        self.eps = eps
        # Plain lists, not buffers: nothing to save, nothing to re-create on the meta device.
        self.basis_list = [1, *itertools.accumulate(self.levels_list[:-1], lambda a, b: a * b)]
        # The bound's per-channel constants, built once per (device, dtype): a forward is a handful of
        # elementwise passes, and building the constants every call took a good part of it.
        self._constants_cache = {}

    @staticmethod
    def codebook_size_for(levels: Sequence[int]) -> int:
        """Number of codes of ``FSQ(levels)``: the product of the levels (each an integer >= 2)."""
        try:
            as_ints = [int(level) for level in levels]
        except (TypeError, ValueError):
            as_ints = None
        if not as_ints or any(level < 2 or level != raw for level, raw in zip(as_ints, levels)):
            raise ValueError(f"FSQ levels must be a non-empty list of integers >= 2; got {levels}.")
        return math.prod(as_ints)

    def _levels(self, device) -> torch.Tensor:
        return torch.tensor(self.levels_list, dtype=torch.long, device=device)

    def _basis(self, device) -> torch.Tensor:
        return torch.tensor(self.basis_list, dtype=torch.long, device=device)

    def _bound_constants(self, device, dtype):
        """``(half_l, shift, offset, half_width)`` of the bound (see the class docstring), each (dim,) of ``dtype``."""
        key = (device, dtype)
        if key not in self._constants_cache:
            with torch.inference_mode(False):  # built under inference_mode, they could not serve a later backward
                self._constants_cache[key] = self._compute_bound_constants(device, dtype)
        return self._constants_cache[key]

    def _compute_bound_constants(self, device, dtype):
        int_levels = self._levels(device)
        levels = int_levels.to(dtype)
        half_l = (levels - 1) * (1 + self.eps) / 2
        offset = torch.where(int_levels % 2 == 1, 0.0, 0.5).to(dtype)
        shift = torch.atanh(offset / half_l)
        return half_l, shift, offset, (int_levels // 2).to(dtype)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        half_l, shift, offset, _ = self._bound_constants(z.device, z.dtype)
        return torch.tanh(z + shift) * half_l - offset

    def _quantize(self, z: torch.Tensor, with_losses: bool):
        half_width = self._bound_constants(z.device, z.dtype)[3]
        bounded = self.bound(z)
        rounded = torch.round(bounded)
        # The digits are the rounded values shifted to [0, L); codes_to_indices(quantized) gives the same
        # numbers (quantized * half_width rounds back to them) but costs three more passes.
        indices = mixed_radix_indices(rounded + half_width, self.basis_list)
        if torch.is_grad_enabled() and bounded.requires_grad:
            quantized = (rounded + (bounded - bounded.detach())) / half_width  # round_ste(bounded) / half_width
        else:
            # Without a graph the straight-through term is +0.0: adding it only turns a -0.0 into +0.0, which
            # add_(0.0) does in place, so both paths give the same bits.
            quantized = rounded.add_(0.0).div_(half_width)
        return quantized, indices, {}

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        half_width = self._levels(codes.device) // 2
        digits = torch.round(codes * half_width).long() + half_width
        return (digits * self._basis(codes.device)).sum(dim=-1)

    def _indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        levels = self._levels(indices.device)
        digits = (indices[..., None] // self._basis(indices.device)) % levels
        half_width = levels // 2
        return (digits - half_width).float() / half_width

    def extra_repr(self) -> str:
        return f"levels={self.levels_list}, codebook_size={self.codebook_size}"


__all__ = ["FSQ", "round_ste"]
