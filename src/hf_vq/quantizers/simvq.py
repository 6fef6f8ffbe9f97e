"""SimVQ (Zhu et al. 2024): a frozen random codebook reparameterised by a learned linear map."""

import torch
import torch.nn as nn

from .nearest import DEFAULT_CHUNK_ELEMENTS
from .vector_quantizer import VectorQuantizer


class SimVQ(VectorQuantizer):
    """A :class:`VectorQuantizer` whose codes are ``W(C)``: a frozen ``C ~ N(0, dim^-1/2)``, a trainable ``Linear(dim, dim)``.

    The projected codebook is used both for the search and for the lookup, including
    ``indices_to_codes`` (the official ``get_codebook_entry`` forgets the projection).
    Loss: ``beta * mean((z - sg(q))^2) + mean((q - sg(z))^2)``; the codebook term trains W.

    State-dict keys (kept from the first release, so saved models load): the frozen codes
    are the buffer ``frozen_codebook`` (``self.codebook`` reads it) and W is
    ``codebook_projection.weight`` / ``codebook_projection.bias``.
    """

    def __init__(self, dim: int, codebook_size: int, beta: float = 0.25,
                 max_search_elements: int = DEFAULT_CHUNK_ELEMENTS):
        super().__init__(dim, codebook_size, beta=beta, codebook_init="normal", max_search_elements=max_search_elements)

    def _create_codebook(self) -> None:
        self.register_buffer("frozen_codebook", torch.empty(self.codebook_size, self.codebook_dim))
        self.codebook_projection = nn.Linear(self.codebook_dim, self.codebook_dim)

    @property
    def codebook(self) -> torch.Tensor:
        """The stored (frozen) codes C; the codes used are ``codebook_table() = W(C)``."""
        return self.frozen_codebook

    @torch.no_grad()
    def _draw_codebook(self) -> None:
        nn.init.normal_(self.frozen_codebook, mean=0.0, std=self.dim**-0.5)

    def codebook_table(self) -> torch.Tensor:
        return self.codebook_projection(self.frozen_codebook)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size={self.codebook_size}, beta={self.beta}"


__all__ = ["SimVQ"]
