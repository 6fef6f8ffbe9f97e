"""Bounded-memory, resumable k-means in torch (offline codebooks: VQGAN-LC, Cluster).

Named ``clustering`` so that importing it never shadows the ``hf_vq.quantizers.kmeans`` function (the lazy
k-means of ``KMeansInit``).

Lloyd's algorithm where every assignment goes through the chunked
:func:`~hf_vq.quantizers.nearest.nearest_code`: the largest temporary is
``max_elements`` scores, never a points x codes matrix, so 100,000 codes fit in a few
hundred MB next to the points themselves. Initialisation is greedy k-means++ (the one
scikit-learn uses: ``2 + log k`` candidates per new centre, the best kept) or random points.

Resume: with ``state_path`` the state (centroids, iteration, inertia history, RNG state and
a fingerprint of the points) is written after the initialisation and after every
iteration as one safetensors file (replaced atomically with ``os.replace``) plus a JSON
summary next to it. ``fit`` with the same ``state_path`` and the same points continues from
the last completed iteration; other points or settings are an error, never a silent mix.
"""

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .nearest import DEFAULT_CHUNK_ELEMENTS, nearest_code

KMEANS_INITS = ("k-means++", "random")
_STATE_VERSION = "1"


def _atomic_save_tensors(tensors: dict, metadata: dict, path: Path) -> None:
    temp = path.with_name(path.name + ".tmp")
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(temp), metadata=metadata)
    os.replace(temp, path)


def _atomic_write_json(payload: dict, path: Path) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(payload, indent=2))
    os.replace(temp, path)


@torch.no_grad()
def squared_distances_to_assigned(points: torch.Tensor, centroids: torch.Tensor, assignments: torch.Tensor,
                                  chunk_rows: int = 65536) -> torch.Tensor:
    """``||x_i - c_{a_i}||^2`` for every point, in chunks of rows (N,)."""
    out = torch.empty(points.shape[0], dtype=torch.float64, device=points.device)
    for start in range(0, points.shape[0], chunk_rows):
        stop = start + chunk_rows
        diff = points[start:stop].double() - centroids[assignments[start:stop]].double()
        out[start:stop] = diff.pow(2).sum(1)
    return out


@torch.no_grad()
def kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator, num_trials: int | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; the greedy variant of scikit-learn).

    Keeps one (N,) vector of squared distances to the closest chosen centre; each new centre
    is the best of ``num_trials`` candidates drawn with probability proportional to it.
    Memory O(N * num_trials); time O(N * d * k * num_trials).
    """
    n = points.shape[0]
    num_trials = num_trials or 2 + int(math.log(k))
    points64 = points.double()
    centres = torch.empty(k, points.shape[1], dtype=points.dtype, device=points.device)
    first = int(torch.randint(0, n, (1,), generator=generator))
    centres[0] = points[first]
    closest = (points64 - points64[first]).pow(2).sum(1)
    # Two host reads per centre (were four: the best candidate, and a row indexed by it): the total (a
    # Python branch) and the probabilities, drawn on the CPU with the seeded CPU generator, so that a seed
    # gives the same centres on every device.
    for index in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # every point already coincides with a centre: repeat points
            candidates = torch.randint(0, n, (num_trials,), generator=generator)
        else:
            candidates = torch.multinomial((closest / total).float().cpu(), num_trials, replacement=True,
                                           generator=generator)
        candidates = candidates.to(points.device)
        distances = torch.cdist(points64[candidates], points64).pow(2)  # (trials, N): small
        potentials = torch.minimum(closest[None], distances).sum(1)
        # index_select, not [best]: a 0-d index tensor is read on the host as a Python int.
        best = potentials.argmin().reshape(1)
        centres[index] = points.index_select(0, candidates.index_select(0, best))[0]
        closest = torch.minimum(closest, distances.index_select(0, best)[0])
    return centres


@dataclass
class KMeansResult:
    centroids: torch.Tensor
    assignments: torch.Tensor
    inertia: float
    iterations: int
    converged: bool
    inertia_history: list = field(default_factory=list)


class KMeans:
    """Lloyd's k-means with a chunked search; resumable.

    Args:
        num_clusters: k.
        max_iters: Lloyd iterations at most.
        tol: stop when the relative decrease of the inertia is below ``tol``.
        init: "k-means++" (greedy, scikit-learn's) or "random" (k distinct points).
        seed: seed of the initialisation.
        max_elements: bound on the temporary score block of the search.
    Empty clusters keep their centroid.
    """

    def __init__(self, num_clusters: int, max_iters: int = 50, tol: float = 1e-4, init: str = "k-means++",
                 seed: int = 0, max_elements: int = DEFAULT_CHUNK_ELEMENTS):
        if not isinstance(num_clusters, int) or num_clusters < 1:
            raise ValueError(f"num_clusters must be a positive integer; got {num_clusters!r}.")
        if init not in KMEANS_INITS:
            raise ValueError(f"Unknown init {init!r}; choose one of {KMEANS_INITS}.")
        if max_iters < 0 or tol < 0:
            raise ValueError(f"max_iters and tol must be >= 0; got {max_iters}, {tol}.")
        self.num_clusters = num_clusters
        self.max_iters = max_iters
        self.tol = tol
        self.init = init
        self.seed = seed
        self.max_elements = max_elements

    # -- state --------------------------------------------------------------------------
    def _settings(self, points: torch.Tensor) -> dict:
        points64 = points.double()
        # A cheap fingerprint of the data: resuming on other points must not pass silently.
        return {
            "version": _STATE_VERSION, "num_clusters": str(self.num_clusters), "init": self.init,
            "seed": str(self.seed), "num_points": str(points.shape[0]), "dim": str(points.shape[1]),
            "points_sum": repr(float(points64.sum())), "points_square_sum": repr(float(points64.pow(2).sum())),
        }

    def _save(self, path: Path, settings: dict, centroids, iteration: int, history: list, converged: bool, rng) -> None:
        metadata = dict(settings, iteration=str(iteration), converged=str(converged), inertia_history=json.dumps(history))
        _atomic_save_tensors({"centroids": centroids.cpu(), "rng_state": rng.get_state()}, metadata, path)
        summary = {key: metadata[key] for key in ("num_clusters", "num_points", "dim", "iteration", "converged")}
        _atomic_write_json(dict(summary, inertia_history=history, state=path.name), path.with_suffix(".json"))

    def _load(self, path: Path, settings: dict):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        different = sorted(key for key in settings if metadata.get(key) != settings[key])
        if different:
            raise ValueError(
                f"The k-means state {path} was made with other points or settings ({', '.join(different)} differ). "
                "Use another state path, or delete this one to start over."
            )
        tensors = load_file(str(path))
        history = json.loads(metadata["inertia_history"])
        return tensors["centroids"], int(metadata["iteration"]), history, metadata["converged"] == "True", tensors["rng_state"]

    # -- fit ----------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, points: torch.Tensor, state_path: str | os.PathLike | None = None, progress: bool = False) -> KMeansResult:
        """Cluster ``points`` (N, d); with ``state_path``, save after every step and resume from it."""
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or not points.is_floating_point():
            raise ValueError(f"k-means takes a float tensor of points (N, d); got {getattr(points, 'shape', type(points))}.")
        if points.shape[0] < self.num_clusters:
            raise ValueError(
                f"k-means needs at least as many points as clusters: {points.shape[0]} points for {self.num_clusters} "
                "clusters. Use more data or fewer codes."
            )
        if not bool(torch.isfinite(points).all()):
            raise ValueError("k-means points contain NaN or inf values.")
        points = points.float()
        path = Path(state_path) if state_path is not None else None
        settings = self._settings(points)
        generator = torch.Generator().manual_seed(self.seed)

        if path is not None and path.exists():
            centroids, iteration, history, converged, rng_state = self._load(path, settings)
            centroids = centroids.to(points.device)
            generator.set_state(rng_state)
        else:
            if self.init == "k-means++":
                centroids = kmeans_plus_plus(points, self.num_clusters, generator)
            else:
                chosen = torch.randperm(points.shape[0], generator=generator)[: self.num_clusters]
                centroids = points[chosen.to(points.device)].clone()
            iteration, history, converged = 0, [], False
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._save(path, settings, centroids, iteration, history, converged, generator)

        steps = range(iteration, self.max_iters)
        if progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc=f"k-means ({self.num_clusters} codes)", initial=iteration, total=self.max_iters)
        for iteration in steps:
            if converged:
                break
            assignments = nearest_code(points, centroids, self.max_elements)
            inertia = float(squared_distances_to_assigned(points, centroids, assignments).sum())
            # index_add_, not bincount (which reads the largest index on the host to size its output): the same
            # int64 counts. The inertia above is the iteration's one host read (convergence, history).
            counts = torch.zeros(self.num_clusters, dtype=torch.long, device=points.device)
            counts = counts.index_add_(0, assignments, torch.ones_like(assignments)).to(points.dtype)
            sums = torch.zeros_like(centroids).index_add_(0, assignments, points)
            centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
            previous = history[-1] if history else math.inf
            history.append(inertia)
            converged = previous - inertia <= self.tol * max(previous, 1e-30) if math.isfinite(previous) else False
            if path is not None:
                self._save(path, settings, centroids, iteration + 1, history, converged, generator)

        assignments = nearest_code(points, centroids, self.max_elements)
        inertia = float(squared_distances_to_assigned(points, centroids, assignments).sum())
        return KMeansResult(centroids=centroids, assignments=assignments, inertia=inertia,
                            iterations=len(history), converged=converged, inertia_history=history)


__all__ = ["KMEANS_INITS", "KMeans", "KMeansResult", "kmeans_plus_plus", "squared_distances_to_assigned"]
