"""The one quantizer base: input check, ``_quantize``, output packing, ``reset_codebook``.

Every quantizer (VectorQuantizer and SimVQ, FSQ, LFQ, and the ones to come) subclasses
:class:`Quantizer` and implements two steps on flat vectors:

* ``_quantize(vectors, with_losses)``: ``vectors`` is ``(N, dim)``; returns the quantized
  vectors ``(N, dim)`` (straight-through to ``vectors``), the indices ``(N,)`` and a dict of
  weighted loss terms;
* ``_indices_to_codes(indices)``: LongTensor ``(...)`` already checked to lie in
  ``[0, codebook_size)`` -> the vectors ``(..., dim)`` that ``forward`` outputs for them.

The base checks what comes in (shape, dtype, finite values; integer indices in range),
reshapes, and packs :class:`QuantizerOutput`, so no quantizer repeats those checks.

Loss rule: loss terms are computed only when they can be used, i.e. when the module is
training or autograd is enabled (``with_losses = self.training or torch.is_grad_enabled()``).
At inference (``eval()`` under ``torch.no_grad()``) ``forward`` pays for the search only:
``loss_terms`` is empty and ``loss`` is a zero scalar.
"""

import functools
import math
from abc import ABC, abstractmethod

import torch
import torch.nn as nn

from ..utils.value_checks import check_values, queued_value_checks, run_value_checks
from .output import QuantizerOutput, batch_perplexity


def _raise_for_non_finite_input(name: str, values: list) -> None:
    if not all(math.isfinite(value) for value in values):  # aminmax propagates NaN; an inf is the min or the max
        raise ValueError(
            f"{name} input contains NaN or inf values. Non-finite latents usually mean non-finite pixels "
            "or a diverged encoder: check the input images and lower the learning rate."
        )


def _raise_for_index_range(what: str, codebook_size: int, values: list) -> None:
    low, high = (int(value) for value in values)
    if low < 0 or high >= codebook_size:
        raise ValueError(f"{what} must be in [0, {codebook_size}); got values in [{low}, {high}].")


def check_index_range(indices: torch.Tensor, what: str, codebook_size: int) -> None:
    """Queue the check that ``indices`` (named ``what`` in the error, e.g. "indices") lie in [0, codebook_size):
    one [min, max] reduction, read with the call's other checks (:mod:`hf_vq.utils.value_checks`), with its
    pass flag on the device."""
    stats = torch.stack(torch.aminmax(indices))
    check_values(stats, functools.partial(_raise_for_index_range, what, codebook_size),
                 (stats[0] >= 0) & (stats[1] < codebook_size))


def mixed_radix_indices(digits: torch.Tensor, basis: list) -> torch.Tensor:
    """``sum_j digits[:, j] * basis[j]`` as a LongTensor (N,), for float ``digits`` (N, dim) holding small
    non-negative integers and an integer ``basis`` whose sums stay below 2**53 (FSQ's and LFQ's indices).

    On CPU, one float64 matrix-vector product: exact, several times faster than an int64 product and sum
    over the short last dimension, and float64 is left alone by autocast and by the reduced-precision
    float32 matmul modes. Elsewhere (GPUs, MPS without float64), the int64 product and sum.
    """
    if digits.device.type == "cpu":
        return (digits.to(torch.float64) @ torch.tensor(basis, dtype=torch.float64)).long()
    return (digits.long() * torch.tensor(basis, dtype=torch.long, device=digits.device)).sum(dim=-1)


class Quantizer(nn.Module, ABC):
    """Base class of every quantizer: ``forward(z (..., dim)) -> QuantizerOutput``.

    Subclasses set ``dim`` (input channels) and ``codebook_size`` (number of codes) in their
    constructor and implement ``_quantize`` and ``_indices_to_codes`` (see the module docstring).
    """

    dim: int
    codebook_size: int

    # -- what subclasses implement ----------------------------------------------------
    @abstractmethod
    def _quantize(self, vectors: torch.Tensor, with_losses: bool):
        """(N, dim) vectors -> (quantized (N, dim), indices (N,), {name: weighted loss term})."""

    @abstractmethod
    def _indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """LongTensor (...) in [0, codebook_size) -> codes (..., dim) as ``forward`` outputs them."""

    @torch.no_grad()
    def reset_codebook(self) -> None:
        """Draw a fresh codebook and reset the state that depends on it.

        Quantizers without a stored codebook (FSQ, LFQ) have nothing to reset.
        """

    # -- the shared contract ----------------------------------------------------------
    def computes_losses(self) -> bool:
        """True when loss terms can be used: in training or with autograd enabled."""
        return self.training or torch.is_grad_enabled()

    def check_input(self, z) -> None:
        """Raise a ValueError naming the problem and the fix for input that is not (..., dim) floats."""
        name = type(self).__name__
        if not isinstance(z, torch.Tensor):
            raise ValueError(f"{name} expects a torch.Tensor of shape (..., {self.dim}); got {type(z).__name__}.")
        if z.ndim < 1 or z.shape[-1] != self.dim:
            hint = (f" Channel-first latents (batch, {self.dim}, h, w) need .permute(0, 2, 3, 1)."
                    if z.ndim >= 2 and z.shape[1] == self.dim else "")
            raise ValueError(f"{name} expects input (..., {self.dim}), channel-last; got shape {tuple(z.shape)}.{hint}")
        if not z.is_floating_point():
            raise ValueError(f"{name} expects floating-point input; got dtype {z.dtype}. Convert with z.float().")
        if z.numel() == 0:
            raise ValueError(f"{name} got an empty input of shape {tuple(z.shape)}; pass at least one vector.")
        # One reduction: aminmax propagates NaN and an inf is the min or the max (isfinite(z).all() makes
        # several passes and a bool copy of z, which was most of a small quantizer's forward). A host read
        # of the values: eagerly only (under torch.compile a graph break and a sync per call).
        # The host reads it with the calling model's other checks (hf_vq.utils.value_checks).
        if not torch.compiler.is_compiling():
            stats = torch.stack(torch.aminmax(z.detach()))
            check_values(stats, functools.partial(_raise_for_non_finite_input, name), stats.isfinite().all())

    def check_indices(self, indices) -> None:
        """Raise a ValueError unless ``indices`` is an integer tensor with values in [0, codebook_size)."""
        name = type(self).__name__
        if not isinstance(indices, torch.Tensor):
            raise ValueError(f"{name} indices must be an integer torch.Tensor; got {type(indices).__name__}.")
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise ValueError(f"{name} indices must be an integer tensor; got dtype {indices.dtype}. Use indices.long().")
        # the values are read on the host: eagerly only (under torch.compile a graph break and a sync)
        if indices.numel() and not torch.compiler.is_compiling():
            check_index_range(indices.long(), f"{name} indices", self.codebook_size)
            # Read now (with the calling model's queued checks): the caller looks the indices up next.
            run_value_checks()

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        if torch.compiler.is_compiling():
            return self._forward(z)
        # The input check and those of a codebook update are read together, once, at the end (inside a
        # model's call: with the model's checks). The updates skip a bad input on the device meanwhile.
        with queued_value_checks():
            return self._forward(z)

    def _forward(self, z: torch.Tensor) -> QuantizerOutput:
        self.check_input(z)
        with_losses = self.computes_losses()
        quantized, indices, loss_terms = self._quantize(z.reshape(-1, self.dim), with_losses)
        loss_terms = dict(loss_terms) if with_losses else {}
        loss = sum(loss_terms.values()) if loss_terms else z.new_zeros(())
        return QuantizerOutput(
            quantized=quantized.reshape(z.shape),
            indices=indices.reshape(z.shape[:-1]),
            loss=loss,
            loss_terms=loss_terms,
            perplexity=batch_perplexity(indices, self.codebook_size),
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices (...) -> the vectors (..., dim) that ``forward`` outputs for them."""
        self.check_indices(indices)
        return self._indices_to_codes(indices.long())


__all__ = ["Quantizer"]
