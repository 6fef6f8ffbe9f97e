"""rFID pieces: Frechet distance vs scipy, streamed statistics vs numpy, the Inception network."""

import numpy as np
import pytest
import scipy.linalg
import torch

from hf_vq.evaluation.fid import (
    FeatureStatistics,
    FIDInceptionV3,
    FIDStatistics,
    frechet_distance,
    load_fid_inception,
)
from hf_vq.evaluation.metrics import MissingWeightsError


def scipy_frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The usual formula with scipy.linalg.sqrtm (as pytorch-fid computes it)."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _statistics(features: np.ndarray, description="test") -> FIDStatistics:
    return FIDStatistics(features.mean(0), np.cov(features, rowvar=False), len(features), description)


def test_frechet_distance_matches_scipy_sqrtm_formula():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(200, 12))
    second = rng.normal(loc=0.3, size=(150, 12)) @ rng.normal(size=(12, 12)) * 0.5
    a, b = _statistics(first), _statistics(second)
    expected = scipy_frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_hand_worked_gaussians():
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 with standard deviations s: (1 - 3)^2 + (2 - 1)^2 = 5.
    one = FIDStatistics(np.array([1.0]), np.array([[4.0]]), 10, "a")
    two = FIDStatistics(np.array([3.0]), np.array([[1.0]]), 10, "b")
    assert frechet_distance(one, two) == pytest.approx(5.0)
    # Diagonal 2-D: sum over the axes: (0 + (3 - 1)^2) + (1 + (1 - 2)^2) = 6.
    three = FIDStatistics(np.array([0.0, 0.0]), np.diag([9.0, 1.0]), 10, "c")
    four = FIDStatistics(np.array([0.0, 1.0]), np.diag([1.0, 4.0]), 10, "d")
    assert frechet_distance(three, four) == pytest.approx(6.0)


def test_frechet_distance_rank_deficient_covariances_stay_close_to_scipy():
    # Fewer samples than dimensions, as with a small evaluation set and 2048-d features.
    rng = np.random.default_rng(1)
    a, b = _statistics(rng.normal(size=(20, 32))), _statistics(rng.normal(size=(20, 32)) + 0.1)
    expected = scipy_frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-3)


def test_feature_statistics_streamed_equal_numpy_mean_and_cov():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(37, 6)) * 3 + 1
    statistics = FeatureStatistics()
    for start in range(0, 37, 10):  # uneven batches
        statistics.update(torch.from_numpy(features[start : start + 10]).float())
    result = statistics.compute("streamed")
    np.testing.assert_allclose(result.mu, features.astype(np.float32).mean(0), rtol=1e-5)
    np.testing.assert_allclose(result.sigma, np.cov(features.astype(np.float32), rowvar=False), rtol=1e-4, atol=1e-5)
    assert result.num_images == 37


def test_fid_statistics_npz_round_trip(tmp_path):
    statistics = _statistics(np.random.default_rng(3).normal(size=(10, 4)), "embedded validation, 16px")
    path = statistics.save(tmp_path / "reference.npz")
    loaded = FIDStatistics.load(path)
    np.testing.assert_array_equal(loaded.mu, statistics.mu)  # .npz stores float64 losslessly: exact
    np.testing.assert_array_equal(loaded.sigma, statistics.sigma)
    assert (loaded.num_images, loaded.description) == (10, "embedded validation, 16px")


def test_fid_inception_architecture_and_features():
    torch.manual_seed(0)
    network = FIDInceptionV3()  # random weights: the real ones cannot be downloaded in tests
    state = network.inception.state_dict()
    assert state["fc.weight"].shape == (1008, 2048)  # the TF graph's 1008 classes
    assert not any(key.startswith("AuxLogits") for key in state)
    assert "Mixed_7c.branch_pool.conv.weight" in state
    features = network(torch.rand(2, 3, 16, 16))
    assert features.shape == (2, 2048)
    assert torch.isfinite(features).all()


def test_load_fid_inception_names_the_missing_file_and_loads_a_given_one(tmp_path):
    with pytest.raises(MissingWeightsError, match="pt_inception-2015-12-05-6726825d.pth") as error:
        load_fid_inception(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    assert "--fid-weights" in str(error.value)
    torch.manual_seed(1)
    source = FIDInceptionV3()
    path = tmp_path / "weights.pth"
    torch.save(source.inception.state_dict(), path)
    loaded = load_fid_inception(path)
    torch.testing.assert_close(loaded.inception.Mixed_6b.branch7x7_1.conv.weight, source.inception.Mixed_6b.branch7x7_1.conv.weight)
