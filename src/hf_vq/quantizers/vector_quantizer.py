"""VectorQuantizer: nearest-code lookup with straight-through gradients.

Everything beyond the plain lookup (EMA codebook updates, k-means initialisation,
entropy regularisation, dead-code re-initialisation) is a separate
:class:`~hf_vq.quantizers.behaviours.CodebookBehaviour` passed in ``behaviours``, so each
stays small and they compose: ``VectorQuantizer(64, 512, behaviours=[KMeansInit(), EMAUpdate()])``.
"""

from typing import Iterable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .nearest import DEFAULT_CHUNK_ELEMENTS, nearest_code
from .output import QuantizerOutput, batch_perplexity

DISTANCES = ("euclidean", "cosine")


class VectorQuantizer(nn.Module):
    """Quantise channel-last vectors ``(..., dim)`` to their nearest codebook entry.

    Args:
        dim: size of the input vectors.
        codebook_size: number of codes K.
        codebook_dim: size of the codes; when it differs from ``dim`` the input is projected
            down with a linear layer and the codes projected back (factorised codes).
        l2_norm: l2-normalise both the vectors and the codes before the search and use the
            normalised codes as output (cosine codes, as in ViT-VQGAN / LlamaGen).
        distance: ``"euclidean"`` or ``"cosine"``. ``"cosine"`` searches by cosine similarity
            but outputs the raw codes (CVQ-VAE's ``distance='cos'``). Ignored when ``l2_norm``.
        beta: weight of the commitment term ``mean((z - sg(q))^2)``.
        legacy_beta: put ``beta`` on the codebook term instead (taming's ``legacy=True``).
        codebook_init: ``"uniform"`` (U(-1/K, 1/K), taming/LlamaGen) or ``"normal"`` (N(0, 1)).
        behaviours: codebook behaviours applied in order (see ``behaviours.py``).
        max_search_elements: bound on the temporary distance block of the search.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: Optional[int] = None,
        l2_norm: bool = False,
        distance: str = "euclidean",
        beta: float = 0.25,
        legacy_beta: bool = False,
        codebook_init: str = "uniform",
        behaviours: Iterable[nn.Module] = (),
        max_search_elements: int = DEFAULT_CHUNK_ELEMENTS,
    ):
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"Unknown distance {distance!r}; choose one of {DISTANCES}.")
        if codebook_init not in ("uniform", "normal"):
            raise ValueError(f"Unknown codebook_init {codebook_init!r}; choose 'uniform' or 'normal'.")
        self.dim = dim
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim or dim
        self.l2_norm = l2_norm
        self.distance = distance
        self.beta = beta
        self.legacy_beta = legacy_beta
        self.max_search_elements = max_search_elements

        needs_projection = self.codebook_dim != dim
        self.project_in = nn.Linear(dim, self.codebook_dim) if needs_projection else nn.Identity()
        self.project_out = nn.Linear(self.codebook_dim, dim) if needs_projection else nn.Identity()

        self.codebook_init = codebook_init
        self.codebook = nn.Parameter(torch.empty(codebook_size, self.codebook_dim))
        nn.init.uniform_(self.codebook, -1.0 / codebook_size, 1.0 / codebook_size)

        self.behaviours = nn.ModuleList(behaviours)
        for behaviour in self.behaviours:
            behaviour.attach(self)
        self.reset_codebook()
        # A behaviour that owns the codebook (EMA) replaces the gradient codebook term.
        self.learns_codebook_by_gradient = not any(b.owns_codebook for b in self.behaviours)
        if not self.learns_codebook_by_gradient:
            self.codebook.requires_grad_(False)

    @torch.no_grad()
    def reset_codebook(self) -> None:
        """Draw a fresh codebook and reset every behaviour's state to match it."""
        if self.codebook_init == "uniform":
            nn.init.uniform_(self.codebook, -1.0 / self.codebook_size, 1.0 / self.codebook_size)
        else:
            nn.init.normal_(self.codebook)
        for behaviour in self.behaviours:
            behaviour.reset_state(self)

    # -- the lookup table ------------------------------------------------------------
    def lookup_table(self) -> torch.Tensor:
        """The codes as used for output (normalised when ``l2_norm``), in codebook space."""
        return F.normalize(self.codebook, dim=-1) if self.l2_norm else self.codebook

    def to_search_space(self, vectors: torch.Tensor) -> torch.Tensor:
        """Vectors (codebook space) as compared with codes: normalised for l2/cosine."""
        if self.l2_norm or self.distance == "cosine":
            return F.normalize(vectors, dim=-1)
        return vectors

    def search_table(self) -> torch.Tensor:
        if self.l2_norm or self.distance == "cosine":
            return F.normalize(self.codebook, dim=-1)
        return self.codebook

    def search(self, vectors: torch.Tensor) -> torch.Tensor:
        """Nearest-code indices for codebook-space vectors (N, codebook_dim)."""
        return nearest_code(
            self.to_search_space(vectors.detach()), self.search_table().detach(), self.max_search_elements
        )

    # -- forward ---------------------------------------------------------------------
    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        if z.shape[-1] != self.dim:
            raise ValueError(f"VectorQuantizer expects channel-last input (..., {self.dim}); got {tuple(z.shape)}.")
        leading_shape = z.shape[:-1]
        vectors = self.project_in(z.reshape(-1, self.dim))
        if self.l2_norm:
            vectors = F.normalize(vectors, dim=-1)

        if self.training:
            for behaviour in self.behaviours:
                behaviour.before_search(self, vectors.detach())

        indices = self.search(vectors)
        codes = F.embedding(indices, self.lookup_table())

        commitment = F.mse_loss(vectors, codes.detach())
        loss_terms = {}
        if self.learns_codebook_by_gradient:
            codebook = F.mse_loss(codes, vectors.detach())
            if self.legacy_beta:
                loss_terms["commitment"] = commitment
                loss_terms["codebook"] = self.beta * codebook
            else:
                loss_terms["commitment"] = self.beta * commitment
                loss_terms["codebook"] = codebook
        else:
            loss_terms["commitment"] = self.beta * commitment

        for behaviour in self.behaviours:
            loss_terms.update(behaviour.loss_terms(self, vectors))

        if self.training:
            for behaviour in self.behaviours:
                behaviour.after_search(self, vectors.detach(), indices)

        # codes + (v - sg(v)): the value is exactly the code, the gradient flows to v.
        quantized = codes + (vectors - vectors.detach())
        quantized = self.project_out(quantized).reshape(*leading_shape, self.dim)
        return QuantizerOutput(
            quantized=quantized,
            indices=indices.reshape(leading_shape),
            loss=sum(loss_terms.values()),
            loss_terms=loss_terms,
            perplexity=batch_perplexity(indices, self.codebook_size),
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices (...) -> the vectors (..., dim) that ``forward`` outputs for them."""
        if indices.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"indices must be an integer tensor; got {indices.dtype}.")
        codes = F.embedding(indices.long(), self.lookup_table())
        return self.project_out(codes)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, codebook_dim={self.codebook_dim}, "
            f"l2_norm={self.l2_norm}, distance={self.distance!r}, beta={self.beta}, legacy_beta={self.legacy_beta}"
        )
