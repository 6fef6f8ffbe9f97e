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
