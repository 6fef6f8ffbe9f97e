"""examples/titok_small_run.py: its repeated-pattern measure against numpy's FFT and on synthetic images
(a pattern tiled over a photograph scores high, the photograph alone does not), its no-tokenizer baselines against
numpy + scikit-image, its scale-down against the 256 px models' configs, and its --quick run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("titok_small_run", REPO / "examples" / "titok_small_run.py")
small_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(small_run)


def photo_crops() -> torch.Tensor:
    """Four 64 px crops of scikit-image's astronaut, in [-1, 1] (an independent photograph, not the run's data)."""
    import skimage.data

    array = skimage.data.astronaut()
    crops = [array[top : top + 64, left : left + 64] for top, left in ((40, 200), (300, 100), (150, 300), (400, 400))]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).double() / 127.5 - 1


def fft_periodic_energy(image: np.ndarray, cell: int) -> float:
    """Per-pixel energy of the image's non-zero frequencies on the lattice of multiples of the cell
    frequency (Parseval): the cell-periodic part of the image minus its mean, computed in Fourier space."""
    _, h, w = image.shape
    spectrum = np.fft.fft2(image, axes=(1, 2))
    on_lattice = np.zeros((h, w), dtype=bool)
    on_lattice[:: h // cell, :: w // cell] = True
    on_lattice[0, 0] = False
    return float((np.abs(spectrum[:, on_lattice]) ** 2).sum() / (h * w) ** 2 / image.shape[0])


@pytest.mark.parametrize("cell", [4, 8, 16])
def test_periodic_energy_equals_the_fourier_lattice_energy(cell):
    rng = np.random.default_rng(0)
    images = torch.cat([photo_crops(), torch.from_numpy(rng.normal(size=(2, 3, 64, 64)))])
    ours = small_run.periodic_energy(images, cell).numpy()
    reference = [fft_periodic_energy(image, cell) for image in images.numpy()]
    np.testing.assert_allclose(ours, reference, rtol=1e-9)


def test_a_pattern_tiled_over_a_photograph_scores_high_and_the_photograph_alone_does_not():
    photos = photo_crops()
    tile = 0.1 * torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tiled = photos + tile.repeat(1, 1, 8, 8)  # the same 8 x 8 pattern painted into every decoder cell
    assert small_run.periodic_energy_ratio(photos, photos, 8) == pytest.approx(1.0)
    assert small_run.periodic_energy_ratio(photos, tiled, 8) > 10
    # A flat reconstruction (each image's mean colour) paints nothing into the cells: 0.
    flat = photos.mean(dim=(2, 3), keepdim=True).expand_as(photos)
    assert small_run.periodic_energy_ratio(photos, flat, 8) == pytest.approx(0.0, abs=1e-12)
    # A wave repeating at another period (32 px: 2 cycles per image, off the cell lattice) changes nothing.
    wave = 0.3 * torch.sin(2 * torch.pi * 2 * torch.arange(64, dtype=torch.float64) / 64).view(1, 1, 1, 64)
    assert small_run.periodic_energy_ratio(photos, photos + wave, 8) == pytest.approx(1.0, abs=1e-9)
    # The photograph's own cells share little: its periodic component is a few percent of its cell detail;
    # a pure tiling is all periodic.
    assert small_run.periodic_fraction(photos, 8) < 0.1
    assert small_run.periodic_fraction(tiled, 8) > 5 * small_run.periodic_fraction(photos, 8)
    assert small_run.periodic_fraction(tile.repeat(1, 1, 8, 8), 8) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not a multiple of the cell size"):
        small_run.cell_periodic_component(photos[..., :60], 8)


def test_template_fraction_hand_cases_and_a_motif_painted_into_every_image():
    """image_template_fraction: the share of in-cell detail that is the same at the same place in every image.
    Hand cases: identical images 1; an image and its negative 0; N images with equal detail each in its own cell
    1 / N (the mean over images keeps 1 / N of each, so its energy is N (e / N^2) against e). Then photographs: a
    small motif or a 1 px frame painted into every one of them raises it several times, the photographs alone do
    not reach it (scikit-image photographs, independent of the run's data)."""
    import skimage.data

    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.normal(size=(1, 3, 16, 16)))
    assert small_run.image_template_fraction(base.repeat(5, 1, 1, 1), 4) == pytest.approx(1.0)
    assert small_run.image_template_fraction(torch.cat([base, -base]), 4) == pytest.approx(0.0, abs=1e-12)
    disjoint = torch.zeros(4, 1, 8, 8, dtype=torch.float64)
    for i, (top, left) in enumerate(((0, 0), (0, 4), (4, 0), (4, 4))):
        disjoint[i, 0, top : top + 4, left : left + 4] = torch.arange(16, dtype=torch.float64).view(4, 4)
    assert small_run.image_template_fraction(disjoint, 4) == pytest.approx(1 / 4)
    # A constant per cell is no detail: adding one changes nothing.
    blocks = torch.from_numpy(rng.normal(size=(5, 3, 4, 4))).repeat_interleave(4, 2).repeat_interleave(4, 3)
    images = torch.from_numpy(rng.normal(size=(5, 3, 16, 16)))
    assert small_run.image_template_fraction(images + blocks, 4) == pytest.approx(small_run.image_template_fraction(images, 4))

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    crops = np.stack([photo[top : top + 32, left : left + 32] for photo in photos
                      for top, left in rng.integers(0, 280, size=(8, 2))])
    crops = torch.from_numpy(crops).permute(0, 3, 1, 2).double() / 127.5 - 1
    alone = small_run.image_template_fraction(crops, 4)
    assert alone < 3 / len(crops)  # near 1 / 32: the photographs share little detail at any place
    motif = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
    motif[:, :, 12:18, 12:18] = 0.3 * torch.from_numpy(rng.choice([-1.0, 1.0], size=(3, 6, 6)))
    assert small_run.image_template_fraction(crops + motif, 4) > 4 * alone
    frame = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
    frame[..., 0, :] = frame[..., -1, :] = frame[..., :, 0] = frame[..., :, -1] = 0.5
    assert small_run.image_template_fraction((crops + frame).clamp(-1, 1), 4) > 4 * alone
    # It is not the periodic measure: the motif is not repeated in every cell.
    assert small_run.periodic_fraction(crops + motif, 4) < 2 * small_run.periodic_fraction(crops, 4)


def test_smooth_images_score_high_so_reconstructions_are_compared_with_equally_smooth_photographs():
    from scipy.ndimage import gaussian_filter

    # Hand case: in a linear ramp every cell's zero-mean content is the same small ramp, so all of it is
    # "periodic" although nothing is stamped.
    ramp = (torch.arange(64, dtype=torch.float64) / 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert small_run.periodic_fraction(ramp, 8) == pytest.approx(1.0)
    photos = photo_crops()
    blurred = torch.from_numpy(gaussian_filter(photos.numpy(), sigma=(0, 0, 3.0, 3.0), mode="reflect"))
    assert small_run.periodic_fraction(blurred, 4) > 3 * small_run.periodic_fraction(photos, 4)
    # Round trip: the blur that gives the photographs the blurred images' in-cell detail is the one applied.
    sigma, equally_smooth = small_run.equally_smooth_photographs(photos, blurred, 4)
    assert sigma == pytest.approx(3.0, abs=1e-3)
    np.testing.assert_allclose(equally_smooth.numpy(), blurred.numpy(), atol=1e-3)
    # In-cell detail energy against numpy: mean square of each 4 x 4 cell's zero-mean content.
    cells = blurred.numpy().reshape(4, 3, 16, 4, 16, 4)
    detail = ((cells - cells.mean(axis=(3, 5), keepdims=True)) ** 2).mean(axis=(1, 2, 3, 4, 5))
    np.testing.assert_allclose(small_run.cell_detail_energy(blurred, 4).numpy(), detail, rtol=1e-12)
    # Reconstructions with more detail than the photographs (added noise) are compared with the photographs.
    noisy = photos + 0.2 * torch.randn(photos.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigma, reference = small_run.equally_smooth_photographs(photos, noisy, 4)
    assert sigma == 0 and torch.equal(reference, photos)


def test_cell_border_jumps_hand_cases():
    # Cells painted as flat patches: every jump sits on a border (inside a cell nothing changes).
    patches = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)
    assert small_run.cell_border_jump_ratio(patches + 1e-3 * torch.randn(1, 1, 16, 16, dtype=torch.float64), 4) > 100
    # A linear ramp changes by the same step everywhere: borders are not special.
    ramp = torch.arange(16, dtype=torch.float64).view(1, 1, 1, 16).expand(1, 3, 16, 16)
    assert small_run.cell_border_jump_ratio(ramp, 4) == pytest.approx(1.0)
    # Hand case: rows 0 1 2 3 | 6 7 8 9 (cells of 4): horizontal jumps 1, 1, 1, [3], 1, 1, 1, columns constant.
    # Across borders: 8 horizontal pairs of 9 and 8 vertical pairs of 0 (mean 4.5); inside: 48 of 1 and 48 of 0 (0.5).
    row = torch.tensor([0.0, 1, 2, 3, 6, 7, 8, 9], dtype=torch.float64).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    assert small_run.cell_border_jump_ratio(row, 4) == pytest.approx(4.5 / 0.5)
    # Photographs: borders of a 4 px lattice are not special.
    assert 0.7 < small_run.cell_border_jump_ratio(photo_crops(), 4) < 1.4
    with pytest.raises(ValueError, match="not a multiple of the cell size"):
        small_run.cell_border_jump_ratio(photo_crops()[..., :62], 4)


def test_amplified_detail_keeps_the_mean_and_scales_the_rest():
    image = torch.full((1, 3, 4, 4), 0.2)
    image[..., 0, 0] = 0.3  # one pixel 0.1 above the rest
    amplified = small_run.amplified_detail(image, gain=3)
    mean = image.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(amplified - mean, 3 * (image - mean))
    assert small_run.amplified_detail(torch.ones(1, 3, 4, 4) * 0.9 + torch.eye(4), gain=10).max() == 1  # clamped


def test_trivial_baselines_against_skimage():
    """The no-tokenizer rows, rebuilt with numpy and scored with scikit-image's PSNR on [0, 1] images."""
    from skimage.metrics import peak_signal_noise_ratio

    photos = photo_crops().float()  # 64 px: 16 tokens -> 16 blocks of 16 px; 8 px decoder cells -> 64 cells
    baselines = small_run.trivial_baselines(photos, 8, 16)
    unit = (photos.numpy() + 1) / 2

    def numpy_block_means(block):
        n = 64 // block
        means = unit.reshape(4, 3, n, block, n, block).mean(axis=(3, 5), keepdims=True)
        return np.broadcast_to(means, (4, 3, n, block, n, block)).reshape(unit.shape)

    references = {
        "mean image of all crops": np.broadcast_to(unit.mean(axis=0, keepdims=True), unit.shape),
        "each crop's mean colour": np.broadcast_to(unit.mean(axis=(2, 3), keepdims=True), unit.shape),
        "each crop's 16 block means (16 px; token budget)": numpy_block_means(16),
        "each crop's 64 decoder-cell means (8 px; above the token budget)": numpy_block_means(8),
    }
    assert list(baselines) == list(references)
    for name, images in references.items():
        expected = np.mean([peak_signal_noise_ratio(o, r, data_range=1) for o, r in zip(unit, images)])
        assert baselines[name]["psnr"] == pytest.approx(expected, abs=1e-3), name
    # Finer detail kept -> higher PSNR (a sanity order that every photograph satisfies).
    order = [baselines[name]["psnr"] for name in references]
    assert order == sorted(order)
    with pytest.raises(ValueError, match="square grid of blocks"):
        small_run.trivial_baselines(photos, 8, 15)
    with pytest.raises(ValueError, match="not a multiple of the block size"):
        small_run.block_means(photos[..., :60, :60], 16)


def small_config(variant):
    from hf_vq.models.titok import TiTokConfig

    return TiTokConfig(**{k: v for k, v in small_run.model_section(variant, quick=False).items() if k != "model_type"})


def head_ratios(config) -> tuple:
    """(tokens per decoder cell, decoder width / pixel-head outputs, encoder width / pixel-head outputs,
    decoder depth / encoder depth), from a TiTokConfig's own fields."""
    head_outputs = config.decoder_patch_size**2 * config.num_channels
    return (config.num_latent_tokens / config.decoder_grid_size**2, config.decoder_hidden_size / head_outputs,
            config.encoder_hidden_size / head_outputs, config.decoder_num_layers / config.encoder_num_layers)


def test_the_small_run_keeps_the_256px_models_pixel_head_ratios():
    """Each arm's model has the ratios of its 256 px model: the official single-stage TiTok-BL-64-VQ8k (ViT-B
    encoder, ViT-L decoder) for ours, ViT-B / ViT-B with 16 px patches and 64 tokens for the benchmark."""
    from hf_vq.models.titok import TiTokConfig

    official = TiTokConfig.titok_bl64_vq8k(image_size=256)
    benchmark_page = TiTokConfig.from_official_sizes("base", "base", image_size=256, num_latent_tokens=64, decoder_type="pixel")
    for variant, reference in (("ours", official), ("benchmark", benchmark_page)):
        small = small_config(variant)
        assert head_ratios(small) == pytest.approx(head_ratios(reference)), variant
        assert small.patch_size == small.decoder_patch_size and small.grid_size == small.decoder_grid_size
        assert small_run.scale_ratios(variant) == pytest.approx(dict(zip(
            ("tokens_per_decoder_cell", "decoder_width_over_head_outputs", "encoder_width_over_head_outputs",
             "decoder_over_encoder_depth"), head_ratios(small))))
    assert head_ratios(small_config("ours"))[:2] == pytest.approx((0.25, 4 / 3))
    # The quantizers are the ones each recipe uses (not shrunk).
    assert (small_config("ours").codebook_dim, small_config("ours").l2_norm) == (official.codebook_dim, official.l2_norm)
    assert (small_config("benchmark").codebook_dim, small_config("benchmark").l2_norm) == (12, True)
    # "conv": ours' ViTs with the released two-stage models' codes and, instead of the pixel head, the MaskGIT
    # convolutional decoder, one 2x upsampling per halving of the decoder cell.
    conv, ours = small_config("conv"), small_config("ours")
    assert (conv.decoder_type, conv.codebook_dim, conv.l2_norm, conv.dead_code_restarts) == ("conv", 12, True, True)
    assert head_ratios(conv) == head_ratios(ours)
    assert 2 ** (len(conv.maskgit_channel_multipliers) - 1) == conv.decoder_patch_size == small_run.PATCH_SIZE


def test_conv_arm_on_request(tmp_path):
    """--variants conv trains the convolutional-decoder arm (not in the default run); its table row says it has no
    per-cell pixel head."""
    done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--variants", "conv",
                           "--steps", "2", "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "titok_small_run.json").read_text())
    assert list(report["metrics"]) == ["conv, seed 0"] and report["variants"]["conv"]["decoder_type"] == "conv"
    assert all(np.isfinite(value) for value in report["metrics"]["conv, seed 0"].values())
    assert "conv - (no per-cell pixel head)" in (tmp_path / "titok_small_run.md").read_text()


def test_checks_hand_case():
    report = {
        "input_periodic_fraction": 0.05,
        "baselines": {"each crop's mean colour": {"psnr": 17.0}, "each crop's 16 block means (8 px; token budget)": {"psnr": 19.0},
                      "each crop's 64 decoder-cell means (4 px; above the token budget)": {"psnr": 25.0}},
        "metrics": {"a": {"psnr": 20.0, "periodic_fraction": 0.1, "equally_smooth_periodic_fraction": 0.05,
                          "periodic_energy_ratio": 1.0, "blockiness": 1.2, "equally_smooth_blockiness": 1.0},
                    "b": {"psnr": 18.0, "periodic_fraction": 0.11, "equally_smooth_periodic_fraction": 0.054,
                          "periodic_energy_ratio": 1.2, "blockiness": 1.3, "equally_smooth_blockiness": 1.08}},
    }
    # Reports since the template measure: it must be within 2x the sharp photographs' and 2x the equally smooth ones'.
    measured = {**report, "input_template_fraction": 0.01, "metrics": {
        name: {**report["metrics"]["a"], "template_fraction": value, "equally_smooth_template_fraction": smooth}
        for name, value, smooth in (("c", 0.02, 0.01), ("d", 0.021, 0.02), ("e", 0.015, 0.007))}}
    template_checks = {name: (row["template_fraction_near_photographs"], row["template_fraction_near_equally_smooth_photographs"])
                       for name, row in small_run.checks(measured).items()}
    assert template_checks == {"c": (True, True), "d": (False, True), "e": (True, False)}
    checks = small_run.checks(report)
    assert checks["a"] == {"beats_mean_colour": True, "beats_token_budget_blocks": True,
                           "periodic_fraction_near_photographs": True,
                           "periodic_fraction_near_equally_smooth_photographs": True,
                           "periodic_energy_ratio_at_most_about_1": True, "no_grid_along_cell_borders": True}
    assert checks["b"] == {"beats_mean_colour": True, "beats_token_budget_blocks": False,
                           "periodic_fraction_near_photographs": False,
                           "periodic_fraction_near_equally_smooth_photographs": False,
                           "periodic_energy_ratio_at_most_about_1": False, "no_grid_along_cell_borders": False}


def test_token_diversity_hand_case():
    indices = torch.tensor([[1, 1, 2, 3], [1, 5, 6, 7]])
    diversity = small_run.token_diversity(indices)
    assert diversity["distinct_codes_per_image"] == pytest.approx((3 / 4 + 4 / 4) / 2)
    assert diversity["distinct_codes_per_position"] == pytest.approx((1 / 2 + 2 / 2 + 2 / 2 + 2 / 2) / 4)


def test_held_out_crops_come_from_other_photographs():
    assert not set(small_run.TRAIN_SOURCES) & set(small_run.HELD_OUT_SOURCES)
    crops = small_run.random_crops(small_run.HELD_OUT_SOURCES, 4, seed=1)
    size = small_run.IMAGE_SIZE
    assert [crop.size for crop in crops] == [(size, size)] * 4 and all(crop.mode == "RGB" for crop in crops)


def test_quick_run_writes_grid_metrics_and_table(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--output-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "titok_small_run.json").read_text())
    assert set(report["metrics"]) == {"benchmark, seed 0", "ours, seed 0"} == set(report["checks"])
    for row in report["metrics"].values():
        assert all(np.isfinite(value) for value in row.values())
        assert row["periodic_energy_ratio"] >= 0 and 0 < row["distinct_codes_per_position"] <= 1
        assert 0 < row["codebook_usage"] <= 1
        assert row["blockiness"] > 0 and row["equally_smooth_blockiness"] > 0
    assert report["variants"]["benchmark"]["l2_norm"] and not report["variants"]["ours"]["l2_norm"]
    assert report["variants"]["ours"]["decoder_hidden_size"] > report["variants"]["benchmark"]["decoder_hidden_size"]
    # 5 rows (held-out crops, benchmark setting, ours, both with amplified detail) of 8 images of 32 px shown at 64 px.
    assert Image.open(tmp_path / "titok_small_run.png").size == (8 * 65 + 1, 5 * 65 + 1)
    table = (tmp_path / "titok_small_run.md").read_text()
    assert "benchmark page" in table and "no tokenizer" in table and "Checks" in table
    assert "each crop's mean colour" in report["baselines"] and any("token budget)" in name for name in report["baselines"])


def test_parallel_jobs_give_the_same_metrics_as_one_after_the_other(tmp_path):
    """--jobs 2 trains the runs in two spawned processes: the same seeds give the same metrics, in the same order."""
    reports = []
    for jobs in (1, 2):
        command = [sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--seeds", "0", "1", "--steps", "2",
                   "--variants", "ours", "--jobs", str(jobs), "--output-dir", str(tmp_path / str(jobs))]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        reports.append(json.loads((tmp_path / str(jobs) / "titok_small_run.json").read_text()))
    assert list(reports[1]["metrics"]) == ["ours, seed 0", "ours, seed 1"] == list(reports[0]["metrics"])
    for name, row in reports[0]["metrics"].items():
        assert reports[1]["metrics"][name] == pytest.approx(row, rel=1e-4)
    assert reports[0]["metrics"]["ours, seed 0"]["psnr"] != reports[0]["metrics"]["ours, seed 1"]["psnr"]
    # the timings say whether the runs shared the cores
    assert "one run at a time)" in (tmp_path / "1" / "titok_small_run.md").read_text()
    assert "2 runs at a time sharing the cores)" in (tmp_path / "2" / "titok_small_run.md").read_text()


def test_one_arm_and_seed_on_request(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--variants", "ours",
                           "--seeds", "1", "--steps", "2", "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "titok_small_run.json").read_text())
    assert list(report["metrics"]) == ["ours, seed 1"] and report["steps"] == 2
    assert Image.open(tmp_path / "titok_small_run.png").size == (8 * 65 + 1, 3 * 65 + 1)


def test_the_official_gan_shrunk_on_request(tmp_path):
    """--gan-weight adds the shrunk official GAN from --gan-start: the engine trains a discriminator (its loss is in
    the history), the report records the settings; a start the run never reaches is refused."""
    done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--variants", "ours",
                           "--steps", "3", "--gan-weight", "0.1", "--gan-start", "1", "--output-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "titok_small_run.json").read_text())
    assert report["gan"] == {"weight": 0.1, "start": 1, "disc_learning_rate": 1e-4, "adaptive": False,
                             "augment": False, "stages": 2, "discriminator": small_run.GAN_DISCRIMINATOR}
    assert "L2 + GAN (weight 0.1 from step 1" in (tmp_path / "titok_small_run.md").read_text()
    assert "discriminator" in done.stdout + done.stderr  # the engine's progress shows the discriminator's loss
    logged = report["training_history"]["ours, seed 0"]
    assert [entry["adversarial_weight"] for entry in logged if "adversarial_weight" in entry] == pytest.approx([0.1, 0.1])
    section = small_run.gan_loss_section(0.1, 5)
    assert (section["disc_start"], section["discriminator"], section["adaptive_disc_weight"]) == (5, "maskbit", False)
    assert small_run.gan_loss_section(0.1, 5, adaptive=True)["adaptive_disc_weight"] is True
    assert section["disc_augment"] == []  # the official recipe augments nothing
    for bad in (["--gan-weight", "0.1", "--gan-start", "3"], ["--gan-start", "1"], ["--gan-weight", "-1"],
                ["--adaptive-gan-weight"], ["--disc-augment"], ["--disc-stages", "1"]):
        with pytest.raises(SystemExit, match="--gan"):
            small_run.main(["--quick", "--steps", "3", *bad])


def engine_config_of_train_variant(tmp_path, **options):
    """The TrainConfig that ``train_variant`` (conv arm, 3 quick steps) hands to the engine, caught before training."""
    import hf_vq.training

    seen = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hf_vq.training, "run_training", lambda config: seen.setdefault("config", config))
        small_run.train_variant("conv", 0, tmp_path, tmp_path / "runs", 3, True, **options)
    return seen["config"]


def quick_conv_gan_run(output_dir: Path, weight: str, *options: str) -> tuple[dict, str]:
    """The script's quick conv run, 3 steps, GAN of ``weight`` from step 1 with ``options``: (report, table)."""
    done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--variants", "conv",
                           "--steps", "3", "--gan-weight", weight, "--gan-start", "1", *options,
                           "--output-dir", str(output_dir)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return (json.loads((output_dir / "titok_small_run.json").read_text()),
            (output_dir / "titok_small_run.md").read_text())


def test_adaptive_gan_weight_on_request(tmp_path):
    """--adaptive-gan-weight makes --gan-weight multiply taming's adaptive weight in the engine's loss config; the
    report and the table say so."""
    gan = {"weight": 0.1, "start": 2, "disc_learning_rate": 1e-4, "adaptive": True, "augment": False, "stages": 2}
    loss = engine_config_of_train_variant(tmp_path, gan=gan).loss
    assert (loss.disc_weight, loss.adaptive_disc_weight, loss.disc_start) == (0.1, True, 2)
    report, table = quick_conv_gan_run(tmp_path / "out", "0.1", "--adaptive-gan-weight")
    assert report["gan"]["adaptive"] is True
    # the engine logged 0.1 x taming's ratio of gradient norms, not the fixed 0.1
    weights = [entry["adversarial_weight"] for entry in report["training_history"]["conv, seed 0"]
               if "adversarial_weight" in entry]
    assert len(weights) == 2 and all(weight > 0 and abs(weight - 0.1) > 1e-6 for weight in weights)
    assert "weight 0.1 x taming's adaptive weight from step 1" in table


def test_disc_augment_on_request(tmp_path):
    """--disc-augment puts DiffAugment's three policies on the discriminator's inputs in the engine's loss config;
    the report and the table say so."""
    gan = {"weight": 0.01, "start": 2, "disc_learning_rate": 1e-4, "adaptive": False, "augment": True, "stages": 2}
    loss = engine_config_of_train_variant(tmp_path, gan=gan).loss
    assert (loss.disc_weight, loss.disc_augment) == (0.01, ["color", "translation", "cutout"])
    report, table = quick_conv_gan_run(tmp_path / "out", "0.01", "--disc-augment")
    assert report["gan"]["augment"] is True
    assert any("logits_real" in entry for entry in report["training_history"]["conv, seed 0"])  # the GAN trained
    assert ("discriminator learning rate 0.0001, 2 discriminator stages, DiffAugment (color, translation, cutout) on the discriminator's "
            "inputs)") in table


def conv_receptive_field(discriminator, size: int) -> int:
    """Rows of a size x size image that the middle logit's convolutions reach: the extent of its non-zero input
    gradient with the GroupNorms taken out (their statistics span the whole image, the convolutions do not)."""
    from torch import nn

    for stage in discriminator.stages:
        stage.norm = nn.Identity()
    images = torch.randn(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    logits = discriminator.double()(images)
    middle = logits.shape[-1] // 2
    (gradient,) = torch.autograd.grad(logits[0, 0, middle, middle], images)
    rows = (gradient.abs().sum((0, 1, 3)) > 0).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)


def test_disc_stages_scale_the_discriminators_view_like_the_official_one(tmp_path):
    """--disc-stages sets the shrunk discriminator's stages in the engine's config and the report. Why 1 is offered:
    the official discriminator (3 stages, 256 px) reaches 112 px = 0.44 of the image per logit (worked by hand: 5x5
    input conv 5, then per stage +2 for the 3x3 conv and +3 for the 4-tap blur times the stride so far, the 2x2 max-pool
    to 16x16 +8, the 5x5 logit conv +4 x 16); the default 2 stages reach 28 of 32 px (0.88: every logit sees the
    image's borders), 1 stage 18 of 32 (0.56), the closest share."""
    from hf_vq.modules.discriminators import MaskBitDiscriminator

    official = conv_receptive_field(MaskBitDiscriminator(hidden_channels=32, num_stages=3), 256)
    assert official == 5 + (2 + 3) + (2 + 3) * 2 + (2 + 3) * 4 + 1 * 8 + 4 * 16 == 112
    shares = {stages: conv_receptive_field(MaskBitDiscriminator(**small_run.gan_discriminator(stages)), 32) / 32
              for stages in (1, 2)}
    assert shares == {1: 18 / 32, 2: 28 / 32}
    assert min(shares, key=lambda stages: abs(shares[stages] - official / 256)) == 1

    gan = {"weight": 0.01, "start": 2, "disc_learning_rate": 1e-4, "adaptive": False, "augment": False, "stages": 1}
    loss = engine_config_of_train_variant(tmp_path, gan=gan).loss
    assert loss.discriminator_options["num_stages"] == 1
    report, table = quick_conv_gan_run(tmp_path / "out", "0.01", "--disc-stages", "1")
    assert report["gan"]["stages"] == 1 and report["gan"]["discriminator"]["num_stages"] == 1
    assert "discriminator learning rate 0.0001, 1 discriminator stage)" in table
    with pytest.raises(SystemExit, match="--disc-stages must be at least 1"):
        small_run.main(["--quick", "--gan-weight", "0.1", "--disc-stages", "0"])


def test_weight_ema_on_request(tmp_path):
    """--ema-decay reaches the engine's training.ema_decay, the report and the table record it, and the evaluated
    model is the EMA one (same seed and steps as a run without it, other metrics); a decay outside (0, 1) is
    refused."""
    assert engine_config_of_train_variant(tmp_path, ema_decay=0.999).training.ema_decay == 0.999

    reports = {}
    for name, extra in (("plain", []), ("ema", ["--ema-decay", "0.9"])):
        done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--variants", "ours",
                               "--steps", "3", *extra, "--output-dir", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        reports[name] = json.loads((tmp_path / name / "titok_small_run.json").read_text())
    assert reports["plain"]["ema_decay"] is None and reports["ema"]["ema_decay"] == 0.9
    assert "EMA of the weights (decay 0.9)" in (tmp_path / "ema" / "titok_small_run.md").read_text()
    assert "EMA" not in (tmp_path / "plain" / "titok_small_run.md").read_text()
    assert reports["plain"]["metrics"]["ours, seed 0"]["psnr"] != reports["ema"]["metrics"]["ours, seed 0"]["psnr"]
    for bad in ("0", "1", "-0.5"):
        with pytest.raises(SystemExit, match="--ema-decay"):
            small_run.main(["--quick", "--steps", "3", "--ema-decay", bad])


def test_markdown_renders_reports_of_earlier_versions():
    """A committed report from before the template measure, the EMA option and the jobs count (docs/titok_small_run_gan)
    renders: its measures in their columns, "-" for the ones it lacks, no input template fraction."""
    report = json.loads((REPO / "docs" / "titok_small_run_gan" / "titok_small_run.json").read_text())
    assert "input_template_fraction" not in report and "ema_decay" not in report and "jobs" not in report
    table = small_run.markdown(report)
    assert "input template fraction" not in table and "EMA" not in table
    for name, row in report["metrics"].items():
        assert "template_fraction" not in row
        (line,) = [line for line in table.splitlines() if line.startswith(f"| {name} |")]
        cells = [cell.strip() for cell in line.strip("|").split("|")][1:]
        assert len(cells) == len(small_run.COLUMNS)
        for column, cell in zip(small_run.COLUMNS, cells):
            assert cell == (f"{row[column]:.4f}" if column in row else "-"), column
        assert cells[small_run.COLUMNS.index("template_fraction")] == "-"
