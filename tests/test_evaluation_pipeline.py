"""evaluate_reconstruction / hf-vq evaluate on the embedded data, checked against numpy/skimage/scipy."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import hf_vq
from hf_vq.cli.main import main
from hf_vq.data import EvalTransform, load_embedded_dataset
from hf_vq.evaluation import evaluate_module_path, evaluate_reconstruction
from hf_vq.evaluation.fid import FIDStatistics

IMAGE_SIZE = 32
NUM_IMAGES = 24


class TinyFeatures(torch.nn.Module):
    """A stand-in FID feature extractor (the Inception weights cannot be downloaded in tests)."""

    description = "test random conv features"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)

    def forward(self, images):
        return self.conv(images).tanh().mean((2, 3))


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=IMAGE_SIZE)).eval()


@pytest.fixture(scope="module")
def originals():
    dataset = load_embedded_dataset("validation", num_patches=NUM_IMAGES, patch_size=48)
    transform = EvalTransform(IMAGE_SIZE)
    return torch.stack([transform(row["image"]) for row in dataset])


@pytest.fixture(scope="module")
def random_lpips_network():
    import lpips

    torch.manual_seed(0)
    with pytest.warns(UserWarning):  # lpips still passes torchvision's deprecated `pretrained=`
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()


def _unit_hwc(images: torch.Tensor) -> np.ndarray:
    return ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).double().numpy()


# A random tokenizer decodes nearly constant images, so the reconstructions' covariance is
# close to singular and scipy's sqrtm warns; the comparison still holds to 1e-3.
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_metrics_agree_with_independent_computations(tiny_model, originals, random_lpips_network):
    batches = list(originals.split(10))  # uneven last batch
    results = evaluate_reconstruction(
        tiny_model, batches, progress=False, metrics=("usage", "psnr", "ssim", "lpips", "rfid"),
        lpips_network=random_lpips_network, fid_feature_extractor=TinyFeatures(), data_description="embedded test",
    )
    with torch.no_grad():
        encoded = tiny_model.encode(originals)
        reconstructions = tiny_model.decode(encoded.quantized).sample
    # Usage and perplexity from a numpy histogram of the codes of all images.
    counts = np.bincount(encoded.indices.numpy().ravel(), minlength=32)
    probs = counts[counts > 0] / counts.sum()
    assert results["codebook_usage"] == pytest.approx((counts > 0).mean())
    assert results["perplexity"] == pytest.approx(np.exp(-(probs * np.log(probs)).sum()))
    assert results["num_tokens"] == NUM_IMAGES * (IMAGE_SIZE // 4) ** 2
    # PSNR and SSIM: per image with skimage, then the mean.
    recon, orig = _unit_hwc(reconstructions), _unit_hwc(originals)
    expected_psnr = np.mean([peak_signal_noise_ratio(o, r, data_range=1) for r, o in zip(recon, orig)])
    expected_ssim = np.mean([structural_similarity(r, o, data_range=1, channel_axis=-1) for r, o in zip(recon, orig)])
    assert results["psnr"] == pytest.approx(expected_psnr, abs=1e-4)
    assert results["ssim"] == pytest.approx(expected_ssim, abs=1e-4)
    with torch.no_grad():
        expected_lpips = random_lpips_network(reconstructions.clamp(-1, 1), originals).mean().item()
    assert results["lpips"] == pytest.approx(expected_lpips, abs=1e-5)
    # rFID: numpy statistics of the stand-in features and the scipy sqrtm formula.
    extractor = TinyFeatures()
    with torch.no_grad():
        fake = extractor((reconstructions.clamp(-1, 1) + 1) / 2).double().numpy()
        real = extractor((originals + 1) / 2).double().numpy()
    mu1, mu2 = fake.mean(0), real.mean(0)
    s1, s2 = np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    expected_fid = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    assert results["rfid"] == pytest.approx(expected_fid, rel=1e-3, abs=1e-6)
    assert results["rfid_reference"]["num_images"] == NUM_IMAGES
    assert "embedded test" in results["rfid_reference"]["description"]
    assert results["num_images"] == NUM_IMAGES


def test_trainer_call_signature_still_works(tiny_model, originals):
    results = evaluate_reconstruction(tiny_model, [originals[:8]], progress=False)
    assert {"codebook_usage", "perplexity", "num_tokens", "psnr", "ssim", "num_images"} <= set(results)
    assert "lpips" not in results and "rfid" not in results


def test_rfid_reference_statistics_are_computed_once_and_cached(tiny_model, originals, tmp_path):
    cache = tmp_path / "reference.npz"
    kwargs = {"progress": False, "metrics": ("rfid",), "fid_feature_extractor": TinyFeatures(), "data_description": "cached set"}
    first = evaluate_reconstruction(tiny_model, [originals], fid_reference=cache, **kwargs)
    stored = FIDStatistics.load(cache)
    assert stored.num_images == NUM_IMAGES and "cached set" in stored.description
    assert first["rfid_reference"]["path"] == str(cache)
    # A second run reads the cache: tamper with it and the distance must follow.
    FIDStatistics(stored.mu + 1.0, stored.sigma, stored.num_images, stored.description).save(cache)
    second = evaluate_reconstruction(tiny_model, [originals], fid_reference=cache, **kwargs)
    assert second["rfid"] > first["rfid"] + 1.0
    # A cache made with other features is refused, not silently compared.
    FIDStatistics(stored.mu, stored.sigma, stored.num_images, "other features").save(cache)
    with pytest.raises(ValueError, match="computed with other features"):
        evaluate_reconstruction(tiny_model, [originals], fid_reference=cache, **kwargs)


def test_missing_weights_skip_only_their_metrics(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    output = tmp_path / "metrics.json"
    assert main(["evaluate", str(model_dir), "--max-images", "16", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert set(results["skipped_metrics"]) == {"lpips", "rfid"}
    assert "pt_inception-2015-12-05-6726825d.pth" in results["skipped_metrics"]["rfid"]
    assert str(tmp_path / "empty_torch_home") in results["skipped_metrics"]["lpips"]
    assert results["num_images"] == 16 and 0 < results["codebook_usage"] <= 1
    assert "psnr" in results and "ssim" in results and "rfid" not in results
    out = capsys.readouterr()
    assert "Skipping rfid" in out.err and "| Codebook usage↑ | PSNR↑ | SSIM↑ | LPIPS↓ | rFID↓ |" in out.out


def test_evaluate_an_image_folder(tiny_model, tmp_path, originals):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(_unit_hwc(originals[:5])):
        Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    output = tmp_path / "m.json"
    main(["evaluate", str(model_dir), "--data", str(folder), "--metrics", "usage", "psnr", "--output", str(output)])
    results = json.loads(output.read_text())
    assert results["num_images"] == 5 and "image folder" in results["eval_data"]


@pytest.mark.parametrize("name", ["psnr", "ssim"])
def test_evaluate_modules_load_offline_and_match_skimage(name):
    import evaluate

    rng = np.random.default_rng(0)
    references = [rng.random((12, 14, 3)) for _ in range(3)]
    predictions = [np.clip(r + rng.normal(0, 0.1, r.shape), 0, 1) for r in references]
    result = evaluate.load(evaluate_module_path(name)).compute(predictions=predictions, references=references)
    if name == "psnr":
        expected = [peak_signal_noise_ratio(r, p, data_range=1) for p, r in zip(predictions, references)]
    else:
        expected = [structural_similarity(p, r, data_range=1, channel_axis=-1) for p, r in zip(predictions, references)]
    np.testing.assert_allclose(result[f"{name}_per_image"], expected, atol=1e-4)
    assert result[name] == pytest.approx(np.mean(expected), abs=1e-4)


def test_evaluate_module_path_names_the_available_modules():
    with pytest.raises(ValueError, match="psnr"):
        evaluate_module_path("fid")


def test_hub_dataset_source_finds_the_image_column(monkeypatch):
    import datasets

    from hf_vq.data.sources import load_image_source

    hub_like = load_embedded_dataset("validation", num_patches=6, patch_size=32).rename_column("image", "img")
    calls = []

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return hub_like

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    images, description = load_image_source("someone/faces", split="test", max_images=4)
    assert calls == [("someone/faces", "test")]
    assert len(images) == 4 and images[3].size == (32, 32)
    assert description == "someone/faces test split (first 4)"
