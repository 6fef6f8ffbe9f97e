"""Bounded-memory resumable k-means: scikit-learn agreement, exact resume, 100k codes without a points x codes matrix."""

import json

import numpy as np
import pytest
import torch

from hf_vq.quantizers.clustering import KMeans, kmeans_plus_plus


def _blobs(seed=0):
    from sklearn.datasets import make_blobs

    points, _ = make_blobs(n_samples=3000, n_features=8, centers=12, cluster_std=2.0, random_state=seed)
    return points.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_inertia_agrees_with_scikit_learn_within_one_percent(seed):
    from sklearn.cluster import KMeans as SklearnKMeans

    points = _blobs(seed)
    reference = SklearnKMeans(n_clusters=12, init="k-means++", n_init=1, random_state=seed, tol=1e-6).fit(points)
    ours = KMeans(12, max_iters=100, tol=1e-6, seed=seed).fit(torch.from_numpy(points))
    assert ours.inertia <= reference.inertia_ * 1.01
    # Our reported inertia is the true one of our centroids, computed here independently in numpy.
    distances = ((points[:, None, :].astype(np.float64) - ours.centroids.numpy()[None]) ** 2).sum(-1)
    assert ours.inertia == pytest.approx(distances.min(1).sum(), rel=1e-6)
    np.testing.assert_array_equal(ours.assignments.numpy(), distances.argmin(1))


def test_kmeans_plus_plus_picks_distinct_data_points():
    points = torch.from_numpy(_blobs())
    centres = kmeans_plus_plus(points, 12, torch.Generator().manual_seed(0))
    rows = {tuple(row.tolist()) for row in points}
    assert all(tuple(centre.tolist()) in rows for centre in centres)
    assert len({tuple(c.tolist()) for c in centres}) == 12


def test_resume_continues_exactly_and_refuses_other_points(tmp_path):
    points = torch.from_numpy(_blobs())
    full = KMeans(12, max_iters=8, tol=0, seed=3).fit(points)
    state = tmp_path / "state.safetensors"
    KMeans(12, max_iters=3, tol=0, seed=3).fit(points, state_path=state)  # "interrupted" after 3 iterations
    summary = json.loads((tmp_path / "state.json").read_text())
    assert summary["iteration"] == "3" and len(summary["inertia_history"]) == 3
    resumed = KMeans(12, max_iters=8, tol=0, seed=3).fit(points, state_path=state)
    assert resumed.iterations == full.iterations > 3
    torch.testing.assert_close(resumed.centroids, full.centroids, atol=0, rtol=0)
    assert resumed.inertia_history == full.inertia_history
    with pytest.raises(ValueError, match="other points or settings"):
        KMeans(12, max_iters=8, seed=3).fit(points[:-1], state_path=state)
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least as many points"):
        KMeans(10).fit(torch.randn(5, 3))
    with pytest.raises(ValueError, match="NaN"):
        KMeans(2).fit(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="init"):
        KMeans(2, init="kmeans||")


def test_every_kmeans_assignment_goes_through_the_chunked_search(monkeypatch):
    """k-means assigns points only with nearest_code and its max_elements bound (no other points x codes work)."""
    import hf_vq.quantizers.clustering as kmeans_module

    calls = []
    original = kmeans_module.nearest_code

    def spy(points, codes, max_elements):
        calls.append((points.shape[0], codes.shape[0], max_elements))
        return original(points, codes, max_elements)

    monkeypatch.setattr(kmeans_module, "nearest_code", spy)
    KMeans(50, max_iters=3, tol=0, init="random", max_elements=1000).fit(torch.randn(400, 4))
    assert len(calls) == 4 and all(call == (400, 50, 1000) for call in calls)
