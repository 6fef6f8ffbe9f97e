"""SimVQ (Zhu et al. 2024): a frozen random codebook reparameterised by a learned linear map."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .nearest import DEFAULT_CHUNK_ELEMENTS, nearest_code
from .output import QuantizerOutput, batch_perplexity


class SimVQ(nn.Module):
    """Codes are ``W(C)`` for a frozen ``C ~ N(0, dim^-1/2)`` and a trainable ``Linear(dim, dim)``.

    The projected codebook is used both for the search and for the lookup, including
    ``indices_to_codes`` (the official ``get_codebook_entry`` forgets the projection).
    Loss: ``beta * mean((z - sg(q))^2) + mean((q - sg(z))^2)``; the codebook term trains W.
    """

    def __init__(self, dim: int, codebook_size: int, beta: float = 0.25,
                 max_search_elements: int = DEFAULT_CHUNK_ELEMENTS):
        super().__init__()
        self.dim = dim
        self.codebook_size = codebook_size
        self.codebook_dim = dim
        self.beta = beta
        self.max_search_elements = max_search_elements
        self.register_buffer("frozen_codebook", torch.empty(codebook_size, dim))
        self.codebook_projection = nn.Linear(dim, dim)
        self.reset_codebook()

    @torch.no_grad()
    def reset_codebook(self) -> None:
        nn.init.normal_(self.frozen_codebook, mean=0.0, std=self.dim**-0.5)

    def lookup_table(self) -> torch.Tensor:
        return self.codebook_projection(self.frozen_codebook)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        if z.shape[-1] != self.dim:
            raise ValueError(f"SimVQ expects channel-last input (..., {self.dim}); got {tuple(z.shape)}.")
        leading_shape = z.shape[:-1]
        vectors = z.reshape(-1, self.dim)
        table = self.lookup_table()
        indices = nearest_code(vectors.detach(), table.detach(), self.max_search_elements)
        codes = F.embedding(indices, table)
        loss_terms = {
            "commitment": self.beta * F.mse_loss(vectors, codes.detach()),
            "codebook": F.mse_loss(codes, vectors.detach()),
        }
        # codes + (v - sg(v)): the value is exactly the code, the gradient flows to v.
        quantized = codes + (vectors - vectors.detach())
        return QuantizerOutput(
            quantized=quantized.reshape(z.shape),
            indices=indices.reshape(leading_shape),
            loss=sum(loss_terms.values()),
            loss_terms=loss_terms,
            perplexity=batch_perplexity(indices, self.codebook_size),
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"indices must be an integer tensor; got {indices.dtype}.")
        return F.embedding(indices.long(), self.lookup_table())

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size={self.codebook_size}, beta={self.beta}"
