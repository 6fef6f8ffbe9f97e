"""Codebook behaviours that compose with :class:`VectorQuantizer`.

Each behaviour does one job and hooks into the quantizer at three points:

* ``before_search(vq, vectors)``: training only, before the nearest-code search
  (k-means initialisation);
* ``loss_terms(vq, vectors)``: extra weighted loss terms (entropy regularisation);
* ``after_search(vq, vectors, indices)``: training only, after the search (EMA update,
  dead-code re-initialisation).

``vectors`` are the (N, codebook_dim) inputs in codebook space (after the projection and,
with ``l2_norm``, after normalisation). Statistics are all-reduced across processes and
random choices are broadcast from rank 0, so every process keeps the same codebook.

A behaviour changes the codebook only through ``vq.set_codes(values, indices, source=self)``:
the quantizer refuses non-finite values and calls ``on_codebook_changed(vq, indices)`` on
every other behaviour, so behaviours never know about each other.

Host reads: none per call. The checks of the call's input (and ``set_codes``'s own) are read once,
with the calling model's (:mod:`hf_vq.utils.value_checks`); until then ``set_codes`` returns the
device flag ``accepted`` (False when a queued check fails) and a behaviour writes its own state as
``torch.where(accepted, new, old)`` (:func:`if_accepted`), so a bad batch changes nothing and its
error is raised at the read. The exceptions, each bounded: :class:`KMeansInit` reads its
``initialised`` flag until it is known True, and the ``random`` anchor pool of
:class:`DeadCodeReinit` reads its fill count while the pool fills from batches smaller than it.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.distributed import all_reduce_sum, broadcast
from .entropy import codebook_entropy_loss
from .nearest import nearest_code


class CodebookBehaviour(nn.Module):
    """Base class: every hook is a no-op."""

    #: True when the behaviour updates the codebook itself (no gradient codebook term).
    owns_codebook = False

    def attach(self, vq) -> None:
        """Called once by the quantizer's constructor (register sized buffers here)."""

    def reset_state(self, vq) -> None:
        """Put the behaviour's buffers back to their initial values for ``vq``'s codebook."""

    def before_search(self, vq, vectors: torch.Tensor) -> None:
        pass

    def loss_terms(self, vq, vectors: torch.Tensor) -> dict:
        return {}

    def after_search(self, vq, vectors: torch.Tensor, indices: torch.Tensor) -> None:
        pass

    def on_codebook_changed(self, vq, indices) -> None:
        """Called after another behaviour wrote rows ``indices`` of the codebook (all rows when None)."""


def if_accepted(accepted, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` where the codebook write ``accepted`` it (``set_codes``'s return value: None = checked already)."""
    return new if accepted is None else torch.where(accepted, new, old)


def _unchanged_since(known, tensor: torch.Tensor) -> bool:
    """True when ``known`` (``(tensor, version)`` recorded from a host read) still describes ``tensor``: the same
    tensor object (not replaced by ``.to()``), not written since (``load_state_dict``, ``reset_state``, an update:
    each bumps its version counter)."""
    return known is not None and known[0] is tensor and known[1] == _version(tensor)


def _version(tensor: torch.Tensor):
    try:
        return tensor._version
    except RuntimeError:  # an inference-mode tensor has no version counter: never cached
        return object()


def _code_counts(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    # index_add_, not bincount: bincount reads the largest index on the host (a device sync) to size
    # its output. Sums of ones are exact in float32 up to 2**24 per code, whatever the order.
    counts = torch.zeros(codebook_size, dtype=torch.float32, device=indices.device)
    return counts.index_add_(0, indices, torch.ones(indices.shape, dtype=torch.float32, device=indices.device))


def _code_sums(vectors: torch.Tensor, indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    sums = torch.zeros(codebook_size, vectors.shape[1], dtype=torch.float32, device=vectors.device)
    sums.index_add_(0, indices, vectors.float())
    return sums


class EMAUpdate(CodebookBehaviour):
    """Exponential-moving-average codebook (VQ-VAE-2 / Sonnet style).

    ``ema_count <- d * ema_count + (1 - d) * n_k`` and ``ema_sum <- d * ema_sum + (1 - d) * sum_k``
    with the batch counts ``n_k`` and sums ``sum_k`` of the vectors assigned to code k
    (summed over processes); then ``code_k = ema_sum_k / ema_count_k`` for the codes hit in
    this batch, while a code not hit keeps its value. ``ema_sum`` starts as the codebook and
    ``ema_count`` as ``count_init``: 1.0 (default) makes the first hit a gentle move,
    0.0 is the ImageNet 64x64 benchmark's update (``models/quantizer/quantizer.py``), where
    the first hit of a code gives ``d * code / ((1 - d) * n_k) + mean``. When another
    behaviour writes a code (k-means init), its running sum is set to ``code * ema_count``:
    the running mean becomes the new code with the same weight. A step whose statistics
    are not finite changes nothing (codebook or EMA state); its error is raised at the read of
    the call's checks.
    """

    owns_codebook = True

    def __init__(self, decay: float = 0.99, eps: float = 1e-5, count_init: float = 1.0):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1); got {decay}.")
        if count_init < 0:
            raise ValueError(f"EMA count_init must be >= 0; got {count_init}.")
        self.decay = decay
        self.eps = eps
        self.count_init = count_init

    def attach(self, vq) -> None:
        self.register_buffer("ema_count", torch.full((vq.codebook_size,), float(self.count_init)))
        self.register_buffer("ema_sum", vq.codebook.detach().clone().float())

    @torch.no_grad()
    def reset_state(self, vq) -> None:
        self.ema_count.fill_(self.count_init)
        self.ema_sum.copy_(vq.codebook.detach())

    @torch.no_grad()
    def on_codebook_changed(self, vq, indices) -> None:
        rows = slice(None) if indices is None else indices
        written = vq.codebook[rows].float() * self.ema_count[rows, None]
        self.ema_sum[rows] = if_accepted(vq.last_write_accepted, written, self.ema_sum[rows])

    @torch.no_grad()
    def after_search(self, vq, vectors, indices) -> None:
        counts = all_reduce_sum(_code_counts(indices, vq.codebook_size))
        sums = all_reduce_sum(_code_sums(vectors, indices, vq.codebook_size))
        ema_count = torch.add(self.ema_count * self.decay, counts, alpha=1 - self.decay)
        ema_sum = torch.add(self.ema_sum * self.decay, sums, alpha=1 - self.decay)
        hit = counts[:, None] > 0
        codes = torch.where(hit, ema_sum / ema_count.clamp_min(self.eps)[:, None], vq.codebook.detach().float())
        accepted = vq.set_codes(codes, source=self)
        self.ema_count.copy_(if_accepted(accepted, ema_count, self.ema_count))
        self.ema_sum.copy_(if_accepted(accepted, ema_sum, self.ema_sum))


class NormalizedEMAUpdate(CodebookBehaviour):
    """EMA of unit-norm codes towards the normalised batch means (BEiT v2's ``NormEMAVectorQuantizer``).

    For each code k hit in the batch: ``m_k = normalize(sum_k / n_k)`` (the mean direction of
    the vectors assigned to it, summed over processes), then
    ``code_k <- normalize(d * code_k + (1 - d) * m_k)``; a code not hit keeps its value. Unlike
    :class:`EMAUpdate` there is no running count or sum: the codes themselves are the moving
    average, renormalised after every step so they stay on the unit sphere, where the cosine
    search compares them. Needs a quantizer that l2-normalises (``l2_norm``), since both the
    vectors averaged and the codes are meant to be unit vectors.
    """

    owns_codebook = True

    def __init__(self, decay: float = 0.99):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1); got {decay}.")
        self.decay = decay

    def attach(self, vq) -> None:
        if not vq.l2_norm:
            raise ValueError("NormalizedEMAUpdate keeps unit-norm codes: use it with l2_norm=True (or 'full').")

    @torch.no_grad()
    def after_search(self, vq, vectors, indices) -> None:
        counts = all_reduce_sum(_code_counts(indices, vq.codebook_size))
        sums = all_reduce_sum(_code_sums(vectors, indices, vq.codebook_size))
        means = F.normalize(sums / counts.clamp_min(1)[:, None], dim=-1)
        codebook = vq.codebook.detach().float()
        moved = F.normalize(torch.add(codebook * self.decay, means, alpha=1 - self.decay), dim=-1)
        vq.set_codes(torch.where(counts[:, None] > 0, moved, codebook), source=self)


class KMeansInit(CodebookBehaviour):
    """Initialise the codebook by k-means on the first training batch (lazy init).

    Spherical k-means when the quantizer l2-normalises. The initial centroids are random
    vectors of rank 0's batch (broadcast); each Lloyd iteration sums over all processes.
    """

    def __init__(self, iters: int = 10):
        super().__init__()
        self.iters = iters
        self.register_buffer("initialised", torch.tensor(False))

    @torch.no_grad()
    def reset_state(self, vq) -> None:
        self.initialised.fill_(False)

    def is_initialised(self) -> bool:
        """``initialised`` on the host. Whether to run the k-means is a Python branch, so the flag is read (a
        host sync) until it is read True; after that never again while the buffer stays the same, unwritten
        tensor (``load_state_dict``, ``reset_state`` or ``.to()`` make it read once more)."""
        flag = self.initialised
        if _unchanged_since(self.__dict__.get("_read_initialised"), flag):
            return True
        if bool(flag):
            self.__dict__["_read_initialised"] = (flag, _version(flag))
            return True
        return False

    @torch.no_grad()
    def before_search(self, vq, vectors) -> None:
        if self.is_initialised():
            return
        centroids = kmeans(vectors.float(), vq.codebook_size, self.iters, spherical=vq.l2_norm,
                           max_elements=vq.max_search_elements)
        accepted = vq.set_codes(centroids, source=self)
        if accepted is None:
            self.initialised.fill_(True)
        else:  # a refused write (bad batch) leaves it False: the next batch initialises
            self.initialised.logical_or_(accepted)


@torch.no_grad()
def kmeans(vectors: torch.Tensor, k: int, iters: int, spherical: bool = False, max_elements: int = 2**24):
    """Lloyd's k-means, distributed-consistent. Empty clusters keep their centroid."""
    n = vectors.shape[0]
    choice = torch.randint(0, n, (k,), device=vectors.device) if n < k else torch.randperm(n, device=vectors.device)[:k]
    centroids = broadcast(vectors[choice].clone())
    if spherical:
        centroids = F.normalize(centroids, dim=-1)
    for _ in range(iters):
        assign = nearest_code(vectors, centroids, max_elements)
        counts = all_reduce_sum(_code_counts(assign, k))
        sums = all_reduce_sum(_code_sums(vectors, assign, k))
        updated = sums / counts.clamp_min(1)[:, None]
        if spherical:
            updated = F.normalize(updated, dim=-1)
        centroids = torch.where(counts[:, None] > 0, updated, centroids)
    return centroids


class EntropyRegularization(CodebookBehaviour):
    """Entropy penalty ``weight * (mean sample entropy - entropy of the mean)``.

    With ``p_i = softmax(-||z_i - c||^2 / temperature)`` over the quantizer's lookup table:
    the first term makes each assignment confident, the second spreads usage over the
    codebook (see :func:`~hf_vq.quantizers.entropy.codebook_entropy_loss`, which LFQ uses too).
    """

    def __init__(self, weight: float = 0.1, temperature: float = 0.01, eps: float = 1e-5, chunk_size: int = 4096):
        super().__init__()
        self.weight = weight
        self.temperature = temperature
        self.eps = eps
        self.chunk_size = chunk_size

    def loss_terms(self, vq, vectors) -> dict:
        if self.weight == 0:
            return {}
        return {"entropy": self.weight * self.entropy_loss(vectors, vq.lookup_table())}

    def entropy_loss(self, vectors: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return codebook_entropy_loss(vectors, codes, self.temperature, eps=self.eps, chunk_size=self.chunk_size)


ANCHORS = ("closest", "random", "probabilistic")


class DeadCodeReinit(CodebookBehaviour):
    """CVQ-VAE online clustered re-initialisation of rarely used codes.

    Keeps ``usage`` = EMA (decay 0.99) of each code's share of the batch, then moves every
    code towards an anchor feature with ``alpha = exp(-usage * K * 10 / (1 - decay) - 1e-3)``:
    ``code <- code * (1 - alpha) + anchor * alpha``. Well-used codes get alpha ~ 0; dead
    codes are replaced by their anchor. Anchors:

    * ``closest``: for each code, the batch feature most similar to it;
    * ``random``: the code's row of a feature pool (CVQ-VAE's FeaturePool): K rows that start
      as U(-1/K, 1/K) and are filled with the incoming batch features until full; after
      that a batch of more than K features replaces the pool with K random ones, a smaller
      batch overwrites random rows;
    * ``probabilistic``: a batch feature drawn with probability softmax(similarity).

    Similarity is cosine when the quantizer uses cosine search or l2 norm, else negative
    squared distance. Anchors are drawn on rank 0 and broadcast.
    """

    def __init__(self, anchor: str = "closest", decay: float = 0.99, chunk_codes: int = 1024):
        super().__init__()
        if anchor not in ANCHORS:
            raise ValueError(f"Unknown anchor {anchor!r}; choose one of {ANCHORS}.")
        self.anchor = anchor
        self.decay = decay
        self.chunk_codes = chunk_codes

    def attach(self, vq) -> None:
        self.register_buffer("usage", torch.zeros(vq.codebook_size))
        if self.anchor == "random":
            self.register_buffer("feature_pool", torch.zeros(vq.codebook_size, vq.codebook_dim))
            self.register_buffer("pool_filled", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def reset_state(self, vq) -> None:
        nn.init.zeros_(self.usage)
        if self.anchor == "random":
            nn.init.uniform_(self.feature_pool, -1.0 / vq.codebook_size, 1.0 / vq.codebook_size)
            self.pool_filled.zero_()

    def _pool_filled_on_host(self) -> int:
        """``pool_filled`` on the host: where a batch smaller than the pool goes (rows ``[filled, filled + count)``)
        and whether a random permutation is drawn (once full) are host decisions, so the count is read (a host
        sync) while the pool fills; once read full, never again while the buffer stays the same, unwritten tensor."""
        size, filled = self.feature_pool.shape[0], self.pool_filled
        if _unchanged_since(self.__dict__.get("_read_pool_full"), filled):
            return size
        count = int(filled)
        if count >= size:
            self.__dict__["_read_pool_full"] = (filled, _version(filled))
        return count

    @torch.no_grad()
    def _next_pool(self, features: torch.Tensor):
        """CVQ-VAE's FeaturePool.query on a copy: (the pool (K, dim) with this batch's features stored, the new
        fill count, or None when it stays)."""
        size, count = self.feature_pool.shape[0], features.shape[0]
        if count > size:
            return features[torch.randint(0, count, (size,), device=features.device)].to(self.feature_pool.dtype), size
        start = self._pool_filled_on_host()
        pool = self.feature_pool.clone()
        if start < size:
            # The official code slices past the end here when the batches do not divide K;
            # we store what fits.
            stored = min(count, size - start)
            pool[start : start + stored] = features[:stored]
            return pool, start + stored
        pool[torch.randperm(size, device=features.device)[:count]] = features
        return pool, None

    @torch.no_grad()
    def _store_pool(self, pool: torch.Tensor, filled, accepted) -> None:
        self.feature_pool.copy_(if_accepted(accepted, pool, self.feature_pool))
        if filled is None or (filled == self.feature_pool.shape[0]
                              and _unchanged_since(self.__dict__.get("_read_pool_full"), self.pool_filled)):
            return  # unchanged: not written (a write would make the next small batch read it again)
        self.pool_filled.copy_(if_accepted(accepted, torch.tensor(filled, device=self.pool_filled.device), self.pool_filled))

    @torch.no_grad()
    def _update_pool(self, features: torch.Tensor) -> torch.Tensor:
        """CVQ-VAE's FeaturePool.query: store this batch's features, return the pool (K, dim)."""
        pool, filled = self._next_pool(features)
        self._store_pool(pool, filled, None)
        return self.feature_pool

    def reinit_weights(self, usage: torch.Tensor, codebook_size: int) -> torch.Tensor:
        """alpha per code, the CVQ-VAE formula."""
        return torch.exp(-(usage * codebook_size * 10) / (1 - self.decay) - 1e-3)

    @torch.no_grad()
    def _similarity(self, vq, codes, features):
        if vq.uses_cosine:
            return F.normalize(codes, dim=-1) @ F.normalize(features, dim=-1).t()
        return -(codes.pow(2).sum(1, keepdim=True) + features.pow(2).sum(1) - 2 * codes @ features.t())

    @torch.no_grad()
    def anchors(self, vq, features: torch.Tensor) -> torch.Tensor:
        k = vq.codebook_size
        if self.anchor == "random":
            return self._update_pool(features).clone()
        picks = []
        for start in range(0, k, self.chunk_codes):
            sim = self._similarity(vq, vq.codebook[start : start + self.chunk_codes].float(), features)
            if self.anchor == "closest":
                picks.append(sim.argmax(dim=1))
            else:
                # A NaN probability (features of a bad batch, whose error is raised at the read of the call's
                # checks) would stop multinomial on a CPU and trip a device-side assert on a GPU.
                probabilities = torch.nan_to_num_(F.softmax(sim, dim=1), nan=1.0)
                picks.append(torch.multinomial(probabilities, 1).squeeze(1))
        return features[torch.cat(picks)]

    @torch.no_grad()
    def after_search(self, vq, vectors, indices) -> None:
        counts = all_reduce_sum(_code_counts(indices, vq.codebook_size))
        batch_usage = counts / counts.sum().clamp_min(1)
        usage = torch.add(self.usage * self.decay, batch_usage, alpha=1 - self.decay)
        if self.anchor == "random":
            pool, filled = self._next_pool(vectors.float())
            anchors = broadcast(pool.contiguous())  # rank 0's pool, so every process keeps the same one
        else:
            anchors = broadcast(self.anchors(vq, vectors.float()).contiguous())
        alpha = self.reinit_weights(usage, vq.codebook_size)[:, None]
        accepted = vq.set_codes(vq.codebook * (1 - alpha) + anchors * alpha, source=self)
        self.usage.copy_(if_accepted(accepted, usage, self.usage))
        if self.anchor == "random":
            self._store_pool(anchors, filled, accepted)


__all__ = ["if_accepted", "CodebookBehaviour", "EMAUpdate", "NormalizedEMAUpdate", "KMeansInit", "EntropyRegularization",
           "DeadCodeReinit", "kmeans", "ANCHORS"]
