"""A frozen (teacher-feature) codebook searched and looked up through a trainable projector (VQGAN-LC).

VQGAN-LC (Zhu et al. 2024, zh460045050/VQGAN-LC) fixes a large codebook of CLIP patch
features (100,000 x 768, ``hf-vq build-codebook``) and learns only ``Linear(768 -> dim)``
initialised ``N(0, dim^-0.5)``; the projected codebook is used both for the nearest-code
search and for the lookup, so every code stays reachable and usage stays near 100%.

Loss (``vqgan-gpt-lc/models/models_vq.py``, ``quantize_type='org'``):
``commitment_weight * mean((sg(q) - z)^2) + codebook_weight * mean((q - sg(z))^2)`` with
weights 1 and 0.33; the second term is what trains the projector.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .nearest import DEFAULT_CHUNK_ELEMENTS
from .vector_quantizer import VectorQuantizer


class ProjectedCodebookQuantizer(VectorQuantizer):
    """Codes ``W(C) + b``: a frozen ``C`` (codebook_size, feature_dim) and a trainable ``Linear(feature_dim, dim)``.

    State-dict keys: ``frozen_codebook`` (a persistent buffer: it is part of the model, never
    trained) and ``codebook_projection.weight`` / ``.bias``. Put a real codebook in with
    :meth:`set_frozen_codebook`; a fresh quantizer holds N(0, 1) placeholder features.
    """

    def __init__(self, dim: int, codebook_size: int, feature_dim: int = 768, commitment_weight: float = 1.0,
                 codebook_weight: float = 0.33, max_search_elements: int = DEFAULT_CHUNK_ELEMENTS):
        if not isinstance(feature_dim, int) or feature_dim < 1:
            raise ValueError(f"feature_dim must be a positive integer; got {feature_dim!r}.")
        if commitment_weight < 0 or codebook_weight < 0:
            raise ValueError(f"Loss weights must be >= 0; got {commitment_weight}, {codebook_weight}.")
        self.feature_dim = feature_dim
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        super().__init__(dim, codebook_size, beta=commitment_weight, codebook_init="normal",
                         max_search_elements=max_search_elements)

    def _create_codebook(self) -> None:
        self.register_buffer("frozen_codebook", torch.empty(self.codebook_size, self.feature_dim))
        self.codebook_projection = nn.Linear(self.feature_dim, self.codebook_dim)

    @property
    def codebook(self) -> torch.Tensor:
        """The stored (frozen) features C; the codes used are ``codebook_table() = W(C) + b``."""
        return self.frozen_codebook

    @torch.no_grad()
    def _draw_codebook(self) -> None:
        nn.init.normal_(self.frozen_codebook)
        self.reset_projection()

    @torch.no_grad()
    def reset_projection(self) -> None:
        """VQGAN-LC's init: weight ~ N(0, dim^-0.5) (std), bias as PyTorch's Linear default."""
        nn.init.normal_(self.codebook_projection.weight, std=self.codebook_dim**-0.5)
        bound = self.feature_dim**-0.5
        nn.init.uniform_(self.codebook_projection.bias, -bound, bound)

    @torch.no_grad()
    def set_frozen_codebook(self, features: torch.Tensor) -> None:
        """Install the frozen codebook (codebook_size, feature_dim), e.g. from ``hf-vq build-codebook``."""
        if not isinstance(features, torch.Tensor) or tuple(features.shape) != (self.codebook_size, self.feature_dim):
            raise ValueError(
                f"The frozen codebook must be a tensor ({self.codebook_size}, {self.feature_dim}); got "
                f"{tuple(getattr(features, 'shape', ()))}. Build one with hf-vq build-codebook --codes {self.codebook_size}."
            )
        if not bool(torch.isfinite(features).all()):
            raise ValueError("The frozen codebook contains NaN or inf values.")
        self.frozen_codebook.copy_(features.to(self.frozen_codebook))

    def codebook_table(self) -> torch.Tensor:
        return self.codebook_projection(self.frozen_codebook)

    def loss_terms(self, vectors: torch.Tensor, codes: torch.Tensor) -> dict:
        return {
            "commitment": self.commitment_weight * F.mse_loss(vectors, codes.detach()),
            "codebook": self.codebook_weight * F.mse_loss(codes, vectors.detach()),
        }

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, codebook_size={self.codebook_size}, feature_dim={self.feature_dim}, "
                f"commitment_weight={self.commitment_weight}, codebook_weight={self.codebook_weight}")


__all__ = ["ProjectedCodebookQuantizer"]
