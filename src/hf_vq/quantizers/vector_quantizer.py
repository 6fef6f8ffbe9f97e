"""VectorQuantizer: nearest-code lookup with straight-through gradients.

Everything beyond the plain lookup (EMA codebook updates, k-means initialisation,
entropy regularisation, dead-code re-initialisation) is a separate
:class:`~hf_vq.quantizers.behaviours.CodebookBehaviour` passed in ``behaviours``, so each
stays small and they compose: ``VectorQuantizer(64, 512, behaviours=[KMeansInit(), EMAUpdate()])``.
Behaviours change the codebook only through :meth:`VectorQuantizer.set_codes`, which
refuses non-finite values and tells the other behaviours.
"""

import functools
from typing import Iterable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.value_checks import check_values, has_queued_value_checks, queued_checks_passed
from .base import Quantizer
from .nearest import DEFAULT_CHUNK_ELEMENTS, nearest_code

DISTANCES = ("euclidean", "cosine")
CODEBOOK_INITS = ("uniform", "normal")
L2_NORM_MODES = ("none", "search", "full")


def _refuse_codes(who: str, values: list) -> None:
    finite, accepted = values
    if not finite:
        raise ValueError(
            f"Refusing to write NaN or inf into the codebook{who}; the codebook is left unchanged. "
            "Check the inputs of this training step (non-finite latents or statistics)."
        )
    if not accepted:  # a queued check said False on the device yet passed on the host: its flag is wrong
        raise ValueError(f"The codebook update{who} was skipped, as an input check failed on the device, but that "
                         "check passed when read: the codebook is left unchanged. This is a bug in hf_vq: please report it.")


def l2_norm_mode(value) -> str:
    """``l2_norm`` as one of ``L2_NORM_MODES``: False/None -> "none", True -> "full" (what ``True`` meant first)."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "full"
    if value in L2_NORM_MODES:
        return value
    raise ValueError(f"Unknown l2_norm {value!r}; choose False, True (= 'full') or one of {L2_NORM_MODES}.")


class VectorQuantizer(Quantizer):
    """Quantise channel-last vectors ``(..., dim)`` to their nearest codebook entry.

    Args:
        dim: size of the input vectors.
        codebook_size: number of codes K.
        codebook_dim: size of the codes; when it differs from ``dim`` the input is projected
            down with a linear layer and the codes projected back (factorised codes).
        l2_norm: ``"full"`` (or ``True``): l2-normalise the vectors and the codes everywhere
            (search, losses, output; ViT-VQGAN / LlamaGen), the gradient flows through the
            normalisation of the vectors. ``"search"``: normalise both for the nearest-code
            search and output the normalised code, but the losses compare the raw vectors with
            it and the straight-through gradient skips the normalisation (the ImageNet 64x64
            benchmark's ``l2_norm``). ``False`` / ``"none"``: no normalisation.
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
        if codebook_init not in CODEBOOK_INITS:
            raise ValueError(f"Unknown codebook_init {codebook_init!r}; choose one of {CODEBOOK_INITS}.")
        for name, value in (("dim", dim), ("codebook_size", codebook_size), ("codebook_dim", codebook_dim or dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__} {name} must be a positive integer; got {value!r}.")
        if beta < 0:
            raise ValueError(f"beta (commitment weight) must be >= 0; got {beta}.")
        self.dim = dim
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim or dim
        self.l2_norm_mode = l2_norm_mode(l2_norm)
        #: True when the codes are l2-normalised (either mode): cosine search, normalised output.
        self.l2_norm = self.l2_norm_mode != "none"
        self.distance = distance
        self.beta = beta
        self.legacy_beta = legacy_beta
        self.max_search_elements = max_search_elements
        self.codebook_init = codebook_init

        needs_projection = self.codebook_dim != dim
        self.project_in = nn.Linear(dim, self.codebook_dim) if needs_projection else nn.Identity()
        self.project_out = nn.Linear(self.codebook_dim, dim) if needs_projection else nn.Identity()
        self._create_codebook()

        self.behaviours = nn.ModuleList(behaviours)
        #: ``set_codes``'s last return value (None: checked at once), for the behaviours it tells.
        self.last_write_accepted = None
        for behaviour in self.behaviours:
            behaviour.attach(self)
        self.reset_codebook()
        # A behaviour that owns the codebook (EMA) replaces the gradient codebook term.
        self.learns_codebook_by_gradient = not any(b.owns_codebook for b in self.behaviours)
        if not self.learns_codebook_by_gradient:
            self.codebook.requires_grad_(False)

    # -- the stored codebook -----------------------------------------------------------
    def _create_codebook(self) -> None:
        """Register the stored codes ``self.codebook`` (K, codebook_dim)."""
        self.codebook = nn.Parameter(torch.empty(self.codebook_size, self.codebook_dim))
        # Drawn here and again by reset_codebook: this first draw keeps the random stream of
        # earlier releases, so a seed still gives the same model weights.
        nn.init.uniform_(self.codebook, -1.0 / self.codebook_size, 1.0 / self.codebook_size)

    @torch.no_grad()
    def _draw_codebook(self) -> None:
        if self.codebook_init == "uniform":
            nn.init.uniform_(self.codebook, -1.0 / self.codebook_size, 1.0 / self.codebook_size)
        else:
            nn.init.normal_(self.codebook)

    @torch.no_grad()
    def reset_codebook(self) -> None:
        """Draw a fresh codebook and reset every behaviour's state to match it."""
        self._draw_codebook()
        for behaviour in self.behaviours:
            behaviour.reset_state(self)

    @torch.no_grad()
    def set_codes(self, values: torch.Tensor, indices: Optional[torch.Tensor] = None, source=None) -> Optional[torch.Tensor]:
        """The one way to change the stored codebook: ``codebook[indices] = values`` (all rows when None).

        Refuses non-finite values (the codebook is left unchanged) so that one bad batch
        cannot poison it, then tells every behaviour except ``source`` through
        ``on_codebook_changed(vq, indices)``.

        Outside a model call (no queued value checks) the refusal is read and raised at once and
        this returns None. Inside one (a training forward) it is queued with the call's checks
        (:mod:`hf_vq.utils.value_checks`), not read: the write happens on the device only when the
        values are finite and every queued check (pixels, latents) passes, and the returned bool
        scalar ``accepted`` says whether it did, for the caller's own state (``if_accepted``).
        ``last_write_accepted`` keeps it for the behaviours told of the write.
        """
        who = f" from {type(source).__name__}" if source is not None else ""
        finite = torch.isfinite(values).all()
        passed = queued_checks_passed()
        accepted = finite if passed is None else finite & passed
        check_values(torch.stack([finite, accepted]), functools.partial(_refuse_codes, who), accepted)
        if not has_queued_value_checks():  # read at once, and passed
            accepted = None
        # Through .data: a forward may have saved the codebook for backward (F.normalize, the
        # entropy term); the update must not invalidate that graph (the previous values' graph
        # is what this step's gradient belongs to).
        if indices is None:
            self.codebook.data.copy_(values if accepted is None else torch.where(accepted, values, self.codebook.data))
        else:
            rows = values.to(self.codebook.dtype)
            self.codebook.data[indices] = rows if accepted is None else torch.where(accepted, rows, self.codebook.data[indices])
        self.last_write_accepted = accepted
        for behaviour in self.behaviours:
            if behaviour is not source:
                behaviour.on_codebook_changed(self, indices)
        return accepted

    # -- the tables --------------------------------------------------------------------
    @property
    def uses_cosine(self) -> bool:
        """True when the search compares directions (l2-normalised vectors and codes)."""
        return self.l2_norm or self.distance == "cosine"

    def codebook_table(self) -> torch.Tensor:
        """The codes as the quantizer maps them, before any normalisation (the stored codebook here)."""
        return self.codebook

    def lookup_table(self) -> torch.Tensor:
        """The codes as used for output (normalised when ``l2_norm``), in codebook space."""
        table = self.codebook_table()
        return F.normalize(table, dim=-1) if self.l2_norm else table

    def to_search_space(self, vectors: torch.Tensor) -> torch.Tensor:
        """Vectors (codebook space) as compared with codes: normalised when ``uses_cosine``."""
        return F.normalize(vectors, dim=-1) if self.uses_cosine else vectors

    def search_table(self) -> torch.Tensor:
        """The codes as compared with vectors: normalised when ``uses_cosine``."""
        return self.to_search_space(self.codebook_table())

    def search(self, vectors: torch.Tensor, search_table: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Nearest-code indices for codebook-space vectors (N, codebook_dim)."""
        table = self.search_table() if search_table is None else search_table
        return nearest_code(self.to_search_space(vectors.detach()), table.detach(), self.max_search_elements)

    # -- the steps of forward ----------------------------------------------------------
    def loss_terms(self, vectors: torch.Tensor, codes: torch.Tensor) -> dict:
        """Weighted commitment (and codebook, unless a behaviour owns the codebook) terms."""
        commitment = F.mse_loss(vectors, codes.detach())
        if not self.learns_codebook_by_gradient:
            return {"commitment": self.beta * commitment}
        codebook = F.mse_loss(codes, vectors.detach())
        if self.legacy_beta:
            return {"commitment": commitment, "codebook": self.beta * codebook}
        return {"commitment": self.beta * commitment, "codebook": codebook}

    def straight_through(self, vectors: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """sg(code) + (v - sg(v)): the value is exactly the code, the gradient flows to v only.

        The code is detached as in taming, LlamaGen and the ImageNet 64x64 benchmark: the
        reconstruction gradient trains the encoder; the codebook (or SimVQ's map) learns from
        the codebook term alone.
        """
        return codes.detach() + (vectors - vectors.detach())

    def _quantize(self, z: torch.Tensor, with_losses: bool):
        vectors = self.project_in(z)
        if self.l2_norm_mode == "full":
            vectors = F.normalize(vectors, dim=-1)
        # "search": what the search compares (k-means init and the entropy term score the same
        # distances) is normalised; the losses, the EMA statistics and the gradient see the raw vectors.
        search_vectors = F.normalize(vectors, dim=-1) if self.l2_norm_mode == "search" else vectors

        if self.training and len(self.behaviours):
            # The behaviours update the codebook and their statistics from these vectors without reading the
            # input's checks first: a bad input's update is skipped on the device (set_codes, if_accepted).
            for behaviour in self.behaviours:
                behaviour.before_search(self, search_vectors.detach())

        table = self.codebook_table()
        search_table = self.to_search_space(table)
        # "full" vectors are already normalised: normalising them again is not the identity for a vector
        # shorter than F.normalize's eps (it would search a unit vector, while the losses and the output
        # use the short one), so only the other modes go through to_search_space.
        compared = vectors if self.l2_norm_mode == "full" else self.to_search_space(vectors)
        indices = nearest_code(compared.detach(), search_table.detach(), self.max_search_elements)
        lookup_table = search_table if self.l2_norm else table
        codes = F.embedding(indices, lookup_table)

        loss_terms = {}
        if with_losses:
            loss_terms = self.loss_terms(vectors, codes)
            for behaviour in self.behaviours:
                loss_terms.update(behaviour.loss_terms(self, search_vectors))

        if self.training:
            for behaviour in self.behaviours:
                behaviour.after_search(self, vectors.detach(), indices)

        quantized = self.project_out(self.straight_through(vectors, codes))
        return quantized, indices, loss_terms

    def _indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        return self.project_out(F.embedding(indices, self.lookup_table()))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, codebook_dim={self.codebook_dim}, "
            f"l2_norm={self.l2_norm_mode!r}, distance={self.distance!r}, beta={self.beta}, legacy_beta={self.legacy_beta}"
        )


__all__ = ["DISTANCES", "L2_NORM_MODES", "VectorQuantizer", "l2_norm_mode"]
