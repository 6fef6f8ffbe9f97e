"""gFID of generated samples: hf_vq's glue against a numpy/scipy Frechet distance."""

import numpy as np
import pytest
import scipy.linalg
import torch
from test_evaluation_pipeline import TinyFeatures  # the stand-in FID feature extractor

import hf_vq
from hf_vq.evaluation import compute_gfid
from hf_vq.evaluation.fid import FIDStatistics, MissingWeightsError
from hf_vq.generation import generate_samples


def numpy_fid(f1, f2):
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_gfid_of_generated_samples_matches_scipy_reference(tmp_path):
    torch.manual_seed(0)
    tokenizer = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=32, codebook_size=64, codebook_dim=8, image_size=16)).eval()
    transformer = hf_vq.LlamaGenGPTModel(
        hf_vq.LlamaGenGPTConfig(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64, block_size=16, num_classes=3
        )
    ).eval()
    samples = generate_samples(transformer, tokenizer, 12, batch_size=6, seed=0, progress_bar=False, top_k=8)
    assert samples.shape == (12, 16, 16, 3) and samples.dtype == np.uint8

    rng = np.random.default_rng(0)
    reference_images = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    extractor = TinyFeatures()

    def features(images):
        with torch.no_grad():
            return extractor(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).double().numpy()

    ref_features = features(reference_images)
    reference = FIDStatistics(ref_features.mean(0), np.cov(ref_features, rowvar=False), 10, "ten random images")
    path = reference.save(tmp_path / "ref.npz")
    result = compute_gfid(samples, path, extractor, batch_size=5)
    assert abs(result["gfid"] - numpy_fid(features(samples), ref_features)) < 1e-4
    assert result["num_samples"] == 12
    assert result["reference"] == {"description": "ten random images", "num_images": 10}


def test_gfid_rejects_float_samples_and_missing_reference(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        compute_gfid(np.zeros((2, 8, 8, 3), np.float32), None, TinyFeatures())
    with pytest.raises(FileNotFoundError, match="No FID statistics"):
        compute_gfid(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "none.npz", TinyFeatures())
    from hf_vq.evaluation.fid import load_fid_inception

    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_fid_inception(tmp_path / "pt_inception.pth")


class MeanColourClassifier(torch.nn.Module):
    """Class logits set by each image's mean colour (red / green / blue), very peaked: p(y|x) ~ one-hot."""

    description = "mean-colour stand-in classifier"

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(200.0), requires_grad=False)

    def class_logits(self, images):
        return self.scale * images.mean(dim=(2, 3))


def _solid(colours):
    samples = np.zeros((len(colours), 8, 8, 3), np.uint8)
    for i, channel in enumerate(colours):
        samples[i, :, :, channel] = 255
    return samples


def test_inception_score_on_hand_worked_cases():
    from hf_vq.evaluation import compute_inception_score

    classifier = MeanColourClassifier()
    # Three equally frequent, confidently classified classes: IS = exp(log 3) = 3.
    result = compute_inception_score(_solid([0, 1, 2] * 4), classifier)
    assert result["inception_score"] == pytest.approx(3.0, rel=1e-6) and result["num_samples"] == 12
    # One class only: p(y|x) = p(y), KL = 0, IS = 1.
    assert compute_inception_score(_solid([1] * 6), classifier)["inception_score"] == pytest.approx(1.0, rel=1e-6)
    # Two splits of one class each: IS = 1 per split, whatever the whole set would give.
    split = compute_inception_score(_solid([0] * 4 + [2] * 4), classifier, splits=2)
    assert split["inception_score"] == pytest.approx(1.0, rel=1e-6) and split["inception_score_std"] == pytest.approx(0.0)
    # A soft case against a numpy computation of the definition.
    classifier.scale.fill_(3.0)
    samples = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    logits = 3.0 * (samples.astype(np.float64) / 255.0).mean(axis=(1, 2))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = np.exp((p * (np.log(p) - np.log(p.mean(0, keepdims=True)))).sum(1).mean())
    assert compute_inception_score(samples, classifier)["inception_score"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        compute_inception_score(samples.astype(np.float32), classifier)

