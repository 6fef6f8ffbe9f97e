"""PSNR / SSIM / LPIPS against independent references (scikit-image, the lpips package)."""

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hf_vq.evaluation.metrics import (
    MissingWeightsError,
    load_lpips_network,
    lpips_distance,
    psnr,
    ssim,
)


def _astronaut_pairs(noise_levels=(0.02, 0.1, 0.3), size=(32, 40)):
    """Crops of a real photograph (unit range, HWC) and noisy, clipped copies of them."""
    photo = skimage.data.astronaut().astype(np.float64) / 255
    rng = np.random.default_rng(0)
    pairs = []
    for i, sigma in enumerate(noise_levels):
        top, left = 60 + 50 * i, 120 + 30 * i
        original = photo[top : top + size[0], left : left + size[1]]
        noisy = np.clip(original + rng.normal(0, sigma, original.shape), 0, 1)
        pairs.append((noisy, original))
    return pairs


def _to_model_range(images_hwc) -> torch.Tensor:
    """Stack HWC unit-range arrays into a (B, C, H, W) tensor in [-1, 1]."""
    return torch.from_numpy(np.stack(images_hwc)).permute(0, 3, 1, 2) * 2 - 1


def test_ssim_matches_skimage_on_real_image_crops():
    pairs = _astronaut_pairs()
    reconstructions = _to_model_range([noisy for noisy, _ in pairs])
    originals = _to_model_range([original for _, original in pairs])
    ours = ssim(reconstructions, originals).numpy()
    expected = [structural_similarity(noisy, original, data_range=1, channel_axis=-1) for noisy, original in pairs]
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    # The three noise levels span the scale, so a wrong window or constant would show.
    assert expected[0] - expected[-1] > 0.3


def test_ssim_matches_skimage_float32_inputs_as_the_benchmark_passes_them():
    noisy, original = _astronaut_pairs(noise_levels=(0.05,))[0]
    expected = structural_similarity(noisy.astype(np.float32), original.astype(np.float32), data_range=1.0, channel_axis=-1)
    ours = ssim(_to_model_range([noisy]).float(), _to_model_range([original]).float())
    assert abs(float(ours[0]) - float(expected)) < 1e-4


def test_ssim_grayscale_and_identity():
    camera = skimage.data.camera()[100:124, 200:230].astype(np.float64) / 255
    noisy = np.clip(camera + np.random.default_rng(1).normal(0, 0.1, camera.shape), 0, 1)
    ours = ssim(torch.from_numpy(noisy)[None, None] * 2 - 1, torch.from_numpy(camera)[None, None] * 2 - 1)
    assert abs(float(ours[0]) - structural_similarity(noisy, camera, data_range=1)) < 1e-4
    same = torch.from_numpy(camera)[None, None] * 2 - 1
    assert float(ssim(same, same)[0]) == pytest.approx(1.0, abs=1e-6)


def test_ssim_rejects_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(torch.zeros(1, 3, 6, 6), torch.zeros(1, 3, 6, 6))


def test_psnr_matches_skimage_and_clamps_out_of_range_reconstructions():
    pairs = _astronaut_pairs()
    reconstructions = _to_model_range([noisy for noisy, _ in pairs])
    originals = _to_model_range([original for _, original in pairs])
    expected = [peak_signal_noise_ratio(original, noisy, data_range=1) for noisy, original in pairs]
    np.testing.assert_allclose(psnr(reconstructions, originals).numpy(), expected, atol=1e-4)
    # Hand-worked: a uniform error of 0.1 (unit range) is 20 dB; overshoot beyond 1 is clamped first.
    original = torch.full((1, 3, 8, 8), 0.8) * 2 - 1
    assert float(psnr(original + 0.2, original)[0]) == pytest.approx(20.0, abs=1e-4)
    assert float(psnr(original + 5.0, original)[0]) == pytest.approx(20 * np.log10(1 / 0.2), abs=1e-4)


@pytest.fixture(scope="module")
def random_lpips_network():
    """LPIPS with a random AlexNet backbone, passed explicitly (no weights download here)."""
    import lpips

    torch.manual_seed(0)
    with pytest.warns(UserWarning):  # lpips still passes torchvision's deprecated `pretrained=`
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()


def test_lpips_distance_feeds_unit_range_images_with_normalize(random_lpips_network):
    torch.manual_seed(1)
    originals = torch.rand(3, 3, 32, 32) * 2 - 1
    reconstructions = (originals + 0.3 * torch.randn_like(originals)).clamp(-1.5, 1.5)
    ours = lpips_distance(reconstructions, originals, random_lpips_network)
    # lpips' own [-1, 1] path, without normalize=True, on the clamped images.
    with torch.no_grad():
        expected = random_lpips_network(reconstructions.clamp(-1, 1), originals).flatten()
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    assert ours.shape == (3,)
    assert torch.all(lpips_distance(originals, originals, random_lpips_network).abs() < 1e-6)


def test_lpips_distance_rejects_images_too_small_for_alexnet(random_lpips_network):
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips_distance(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), random_lpips_network)
    assert lpips_distance(torch.zeros(1, 3, 31, 31), torch.zeros(1, 3, 31, 31), random_lpips_network).shape == (1,)


def test_load_lpips_network_names_the_missing_file(tmp_path):
    missing = tmp_path / "alexnet-owt-7be5be79.pth"
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth") as error:
        load_lpips_network(missing)
    assert "download.pytorch.org" in str(error.value) and "--lpips-weights" in str(error.value)


def test_load_lpips_network_reads_the_alexnet_backbone_from_a_file(tmp_path):
    import torchvision

    torch.manual_seed(2)
    alexnet = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet.pth"
    torch.save(alexnet.state_dict(), path)
    network = load_lpips_network(path)
    loaded = dict(network.net.named_parameters())
    for index in (0, 3, 6, 8, 10):  # AlexNet's five convolutions
        name = next(key for key in loaded if key.endswith(f".{index}.weight"))
        torch.testing.assert_close(loaded[name], alexnet.features[index].weight)
