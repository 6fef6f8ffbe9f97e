"""The MaskBit discriminator (TiTok's official one) and the GAN part of the tokenizer objective, against
the official bytedance/1d-tokenizer code on a fixture it made (tests/fixtures/make_maskbit_discriminator_fixtures.py)."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from objective_stand_ins import FixedReconstruction
from safetensors.torch import load_file

from hf_vq.losses import LeCamRegularizer
from hf_vq.modules import MaskBitDiscriminator, build_discriminator
from hf_vq.training import TrainConfig
from hf_vq.training.config import ConfigError
from hf_vq.training.tokenizer_objective import TokenizerObjective

FIXTURE = Path(__file__).parent / "fixtures" / "maskbit_discriminator_tiny.safetensors"
TINY = {"hidden_channels": 32, "num_stages": 2}
VARIANTS = {"blur4": {"blur_kernel_size": 4}, "blur3": {"blur_kernel_size": 3}, "blur5": {"blur_kernel_size": 5},
            "avgpool": {"blur_resample": False}}
# Official NLayerDiscriminator keys -> ours (Sequential indices -> names).
OFFICIAL_KEYS = [
    (r"block_in\.0\.(weight|bias)", r"input_conv.\1"),
    (r"blocks\.(\d+)\.0\.(weight|bias)", r"stages.\1.conv.\2"),
    (r"blocks\.(\d+)\.2\.(weight|bias)", r"stages.\1.norm.\2"),
    (r"to_logits\.0\.(weight|bias)", r"logits_hidden_conv.\1"),
    (r"to_logits\.2\.(weight|bias)", r"logits_conv.\1"),
]


def our_key(official: str) -> str:
    for pattern, replacement in OFFICIAL_KEYS:
        if re.fullmatch(pattern, official):
            return re.sub(pattern, replacement, official)
    raise KeyError(official)


@pytest.fixture(scope="module")
def fixture():
    return load_file(FIXTURE)


def official_tensors(fixture, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in fixture.items() if key.startswith(prefix)}


def loaded(fixture, **options) -> MaskBitDiscriminator:
    """Our discriminator with the official random weights. The official state also holds each stage's blur
    kernel (a saved buffer); ours is a constant rebuilt from blur_kernel_size, checked here against it."""
    discriminator = MaskBitDiscriminator(**TINY, **options)
    state = official_tensors(fixture, "state.")
    kernels = {key: value for key, value in state.items() if key.endswith(".kernel")}
    discriminator.load_state_dict({our_key(key): value.float() for key, value in state.items() if key not in kernels})
    if options.get("blur_kernel_size", 4) == 4 and options.get("blur_resample", True):
        for index, stage in enumerate(discriminator.stages):
            assert torch.allclose(stage.downsample.kernel, kernels[f"blocks.{index}.1.kernel"].float(), atol=1e-3)
    return discriminator


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_equal_the_official_discriminator(fixture, variant):
    discriminator = loaded(fixture, **VARIANTS[variant]).eval()
    with torch.no_grad():
        for name in ("", "large_"):
            # Official inputs are [0, 1]; ours take hf_vq's [-1, 1] and map them back (zero_one_pixels).
            logits = discriminator(fixture[f"{name}pixel_values"] * 2 - 1)
            expected = fixture[f"{name}logits.{variant}"]
            assert logits.shape == expected.shape == (expected.shape[0], 1, 16, 16)
            assert (logits - expected).abs().max().item() < 1e-4, (variant, name)


def test_parameters_and_initialisation_equal_the_official(fixture):
    initial = official_tensors(fixture, "init.")
    torch.manual_seed(0)  # the fixture's official parameters are its torch.manual_seed(0) initialisation
    ours = dict(MaskBitDiscriminator(**TINY).named_parameters())
    assert {our_key(key) for key in initial} == set(ours)
    assert sum(value.numel() for value in initial.values()) == sum(p.numel() for p in ours.values())
    for key, value in initial.items():
        assert torch.equal(ours[our_key(key)], value), key
    # The official default (hidden 128, 3 stages), counted by hand: 5x5 conv 3->128, stages 128->128->256->512
    # (3x3 conv + GroupNorm), 1x1 conv 512->512, 5x5 conv 512->1.
    by_hand = (3 * 25 * 128 + 128) + sum(9 * i * o + o + 2 * o for i, o in ((128, 128), (128, 256), (256, 512))) + (
        512 * 512 + 512) + (512 * 25 + 1)
    assert sum(p.numel() for p in MaskBitDiscriminator().parameters()) == by_hand == 1_909_889


def test_blur_downsample_by_hand():
    """A 4x4 image through the 4-tap blur: 1-pixel zero padding, the normalised (1,3,3,1) outer product, stride 2."""
    discriminator = MaskBitDiscriminator(num_channels=1, hidden_channels=32, num_stages=1)
    blur = discriminator.stages[0].downsample
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    taps = torch.tensor([1.0, 3, 3, 1])
    kernel = torch.outer(taps, taps) / 64
    padded = torch.zeros(6, 6)
    padded[1:5, 1:5] = image[0, 0]
    expected = torch.tensor([[(padded[2 * i:2 * i + 4, 2 * j:2 * j + 4] * kernel).sum() for j in range(2)] for i in range(2)])
    assert torch.allclose(blur(image)[0, 0], expected, atol=1e-6)
    # Odd sizes pad 1 before and 2 after: 5 -> 8 padded -> 3 outputs.
    assert blur(torch.zeros(1, 1, 5, 5)).shape[-2:] == (3, 3)


def test_options_are_checked_with_a_clear_error():
    assert isinstance(build_discriminator("maskbit", 3, options={"hidden_channels": 32}), MaskBitDiscriminator)
    with pytest.raises(ValueError, match=r"Unknown maskbit discriminator options \['num_layers'\]"):
        build_discriminator("maskbit", 3, options={"num_layers": 2})
    with pytest.raises(ValueError, match="options of the maskbit discriminator"):
        build_discriminator("patchgan", 3, options={"num_stages": 2})
    with pytest.raises(ValueError, match="num_channels 1 differs"):
        build_discriminator("maskbit", 3, options={"num_channels": 1})
    with pytest.raises(ValueError, match="multiple of 32"):
        MaskBitDiscriminator(hidden_channels=48)
    with pytest.raises(ValueError, match="blur_kernel_size must be one of"):
        MaskBitDiscriminator(blur_kernel_size=7)
    with pytest.raises(ValueError, match="blur_resample must be true or false"):
        MaskBitDiscriminator(blur_resample="yes")
    with pytest.raises(ValueError, match="no pixels left"):
        MaskBitDiscriminator(hidden_channels=32, num_stages=3, blur_kernel_size=5)(torch.zeros(1, 3, 4, 4))
    base = {"model": {"model_type": "vqvae"}}
    with pytest.raises(ConfigError, match="Unknown maskbit discriminator options"):
        TrainConfig.from_dict({**base, "loss": {"discriminator": "maskbit", "discriminator_options": {"stages": 2}}})
    with pytest.raises(ConfigError, match="discriminator_options.num_stages"):
        TrainConfig.from_dict({**base, "loss": {"discriminator": "maskbit", "disc_layers": 2}})
    with pytest.raises(ConfigError, match="options of the maskbit discriminator"):
        TrainConfig.from_dict({**base, "loss": {"discriminator_options": {"num_stages": 2}}})


def test_gan_losses_lecam_and_gradients_equal_the_official_single_stage_loss(fixture):
    """Our tokenizer objective's GAN part against ReconstructionLoss_Single_Stage's (discriminator_weight 0.1,
    discriminator_factor 1, LeCam weight 1 and decay 0.9, a step past discriminator_start). The official
    perceptual loss needs LPIPS / ConvNeXt-S weights that cannot be downloaded: only the GAN part is compared."""
    config = TrainConfig.from_dict({"model": {"model_type": "titok"}, "loss": {
        "disc_weight": 0.1, "adaptive_disc_weight": False, "disc_start": 2, "disc_loss": "hinge",
        "discriminator": "maskbit", "discriminator_options": TINY, "discriminator_loss_weight": 1.0,
        "lecam_weight": 1.0, "lecam_decay": 0.9}})
    objective = TokenizerObjective(config)
    discriminator = loaded(fixture)
    fake = (fixture["reconstructions"] * 2 - 1).requires_grad_(True)  # hf_vq's [-1, 1]
    objective.model_module = FixedReconstruction(fake)
    objective.discriminator = objective.raw_discriminator = discriminator
    objective.lecam = LeCamRegularizer(decay=0.9)
    objective.lecam.ema_real.fill_(fixture["ema_real_before"].item())
    objective.lecam.ema_fake.fill_(fixture["ema_fake_before"].item())
    objective.perceptual = objective.convnext = None
    objective.usage = SimpleNamespace(update=lambda indices, check_range=True: None)
    batch = {"pixel_values": fixture["pixel_values"] * 2 - 1, "num_unreadable": 0}

    generator_step, discriminator_step = objective.step_losses(batch, step=2)
    assert generator_step.optimizer == "model" and discriminator_step.optimizer == "discriminator"
    assert abs(generator_step.terms["generator_adversarial"].item() - fixture["generator_gan_loss"].item()) < 1e-5
    assert abs(generator_step.loss.item() - fixture["generator_total"].item()) < 1e-5
    generator_step.loss.backward()
    # d/d(2x - 1) = 1/2 d/dx: the official gradient is w.r.t. [0, 1] images.
    assert (fake.grad - 0.5 * fixture["grad_reconstructions"]).abs().max().item() < 1e-6
    assert all(p.grad is None for p in discriminator.parameters())  # the generator step leaves the discriminator alone

    assert abs(discriminator_step.terms["lecam"].item() - fixture["lecam_loss"].item()) < 1e-5  # weight 1
    assert abs(discriminator_step.loss.item() - fixture["discriminator_loss"].item()) < 1e-5
    assert objective.lecam.ema_real.item() == pytest.approx(fixture["ema_real_after"].item(), abs=1e-6)
    assert objective.lecam.ema_fake.item() == pytest.approx(fixture["ema_fake_after"].item(), abs=1e-6)
    discriminator_step.loss.backward()
    gradients = official_tensors(fixture, "grad.")
    ours = dict(discriminator.named_parameters())
    for key, expected in gradients.items():
        assert (ours[our_key(key)].grad - expected).abs().max().item() < 1e-5, key
