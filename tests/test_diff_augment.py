"""DiffAugment of the discriminator's inputs (hf_vq.losses.DiffAugment): each policy against a numpy reference or a
hand case, its gradient, its errors, and its place in the tokenizer objective's GAN steps."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from objective_stand_ins import FixedReconstruction

from hf_vq.losses import DiffAugment
from hf_vq.losses.diff_augment import cut_out, random_color, random_cutout, random_translation, translate
from hf_vq.training import TrainConfig
from hf_vq.training.config import ConfigError
from hf_vq.training.tokenizer_objective import TokenizerObjective


def numpy_shift(image: np.ndarray, down: int, right: int) -> np.ndarray:
    """The image moved down / right, zeros shifted in: loops over the output pixels."""
    out = np.zeros_like(image)
    _, height, width = image.shape
    for y in range(height):
        for x in range(width):
            if 0 <= y - down < height and 0 <= x - right < width:
                out[:, y, x] = image[:, y - down, x - right]
    return out


def test_translate_equals_a_pixel_by_pixel_shift():
    images = torch.randn(5, 3, 8, 6)
    shifts = torch.tensor([[0, 0], [2, -1], [-3, 3], [1, 2], [-2, -3]])
    out = translate(images, shifts, max_shift=3)
    for image, shift, result in zip(images.numpy(), shifts.tolist(), out.numpy()):
        np.testing.assert_array_equal(result, numpy_shift(image, *shift))


def test_random_translation_shifts_each_image_by_at_most_an_eighth_of_its_side():
    torch.manual_seed(0)
    side = 16  # shifts of up to 2 px
    image = (1 + torch.arange(3 * side * side, dtype=torch.float32)).reshape(1, 3, side, side)  # each value once, no 0
    out = random_translation(image.expand(400, -1, -1, -1)).flatten(1)
    # Where each output's first non-zero pixel came from in the image gives its shift.
    position = (out != 0).float().argmax(dim=1)
    source = out.gather(1, position[:, None])[:, 0].long() - 1
    y, x = position % (side * side) // side, position % side
    shifts = torch.stack([y - source % (side * side) // side, x - source % side], dim=1)
    assert torch.equal(out, translate(image.expand(400, -1, -1, -1), shifts, max_shift=side).flatten(1))
    # every shift in [-2, 2]^2 is drawn, and no other (400 draws of 25)
    assert set(map(tuple, shifts.tolist())) == {(down, right) for down in range(-2, 3) for right in range(-2, 3)}


def test_cut_out_zeroes_a_rectangle_clipped_at_the_edges():
    images = torch.randn(4, 2, 8, 10) + 5  # no zeros of its own
    out = cut_out(images, torch.tensor([[4, 4], [0, 9], [8, 1], [3, 5]]), size=(4, 6))
    expected = images.numpy().copy()
    expected[0, :, 2:6, 1:7] = 0  # top-left corner = centre - (2, 3)
    expected[1, :, 0:2, 6:10] = 0  # rows -2..1 and columns 6..11, clipped
    expected[2, :, 6:8, 0:4] = 0  # rows 6..9 and columns -2..3, clipped
    expected[3, :, 1:5, 2:8] = 0
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("height, width", [(16, 16), (8, 14), (9, 16)])
def test_random_cutout_zeroes_half_of_each_side_overhanging_either_edge_alike(height, width):
    torch.manual_seed(0)
    images = torch.randn(2000, 3, height, width) + 10
    zeroed = (random_cutout(images) == 0).all(dim=1)  # (B, H, W): a whole pixel set to 0
    rows, cols = zeroed.any(dim=2), zeroed.any(dim=1)
    for mask, row, col in zip(zeroed[:100], rows, cols):
        assert torch.equal(mask, row[:, None] & col[None, :])  # one axis-aligned rectangle
    for used, side in ((rows, height), (cols, width)):
        size = int(side * 0.5 + 0.5)
        counts = used.sum(dim=1)
        assert counts.max() == size and counts.min() == size - size // 2  # whole inside; at most half cut off
        # The official centre range: a rectangle cut to its smallest sits at the first or the last rows as
        # often (a range one too short never cuts an even-sized one that far at the far edge).
        smallest = counts == counts.min()
        at_start, at_end = (smallest & used[:, 0]).sum(), (smallest & used[:, -1]).sum()
        if size % 2 == 0:
            assert at_start > 0 and at_end > 0 and abs(int(at_start) - int(at_end)) < 0.5 * int(at_start + at_end)


def test_random_color_hand_cases():
    torch.manual_seed(0)
    # A constant grey image: saturation and contrast scale distances to means, which are all 0; only the
    # brightness moves it, by at most 0.5.
    flat = torch.full((200, 3, 4, 4), 0.25)
    out = random_color(flat)
    offsets = out[:, 0, 0, 0] - 0.25
    assert torch.allclose(out, out[:, :1, :1, :1].expand_as(out))
    assert offsets.abs().max() <= 0.5 and offsets.min() < -0.4 and offsets.max() > 0.4
    # A grey image (equal channels) with zero mean: saturation scales each pixel's distance to its channel mean,
    # which is 0, so the output's deviations from its mean are the input's times the contrast factor (0.5 to 1.5).
    grey = torch.randn(300, 1, 6, 6).expand(-1, 3, -1, -1)
    grey = grey - grey.mean(dim=(1, 2, 3), keepdim=True)
    out = random_color(grey)
    centred = out - out.mean(dim=(1, 2, 3), keepdim=True)
    factors = (centred * grey).sum(dim=(1, 2, 3)) / grey.pow(2).sum(dim=(1, 2, 3))
    assert torch.allclose(centred, factors[:, None, None, None] * grey, atol=1e-5)
    assert factors.min() >= 0.5 - 1e-6 and factors.max() <= 1.5 + 1e-6
    assert factors.min() < 0.6 and factors.max() > 1.4


def test_diff_augment_is_differentiable_and_draws_per_image():
    torch.manual_seed(0)
    images = torch.randn(4, 3, 16, 16, requires_grad=True)
    out = DiffAugment(["cutout"])(images)
    out.sum().backward()
    assert torch.equal(images.grad, (out != 0).float())  # the gradient of a mask is the mask
    same = torch.randn(1, 3, 16, 16).expand(8, -1, -1, -1)
    augmented = DiffAugment()(same)
    assert len({tuple(a.flatten()[:50].tolist()) for a in augmented}) == 8  # one draw per image


def test_diff_augment_errors():
    with pytest.raises(ValueError, match=r"Unknown DiffAugment policies \['flip'\]"):
        DiffAugment(["color", "flip"])
    with pytest.raises(ValueError, match="names one policy twice"):
        DiffAugment(["cutout", "cutout"])
    with pytest.raises(ValueError, match="at least one policy"):
        DiffAugment([])


def test_config_checks_disc_augment():
    base = {"model": {"model_type": "vqvae"}}
    loss = TrainConfig.from_dict({**base, "loss": {"disc_weight": 0.1, "disc_augment": ["translation", "cutout"]}}).loss
    assert loss.disc_augment == ["translation", "cutout"]
    assert TrainConfig.from_dict(base).loss.disc_augment == []  # off by default, as in every official recipe
    with pytest.raises(ConfigError, match=r"Unknown DiffAugment policies \['rotate'\]"):
        TrainConfig.from_dict({**base, "loss": {"disc_weight": 0.1, "disc_augment": ["rotate"]}})
    with pytest.raises(ConfigError, match="loss.disc_augment must be empty without a discriminator"):
        TrainConfig.from_dict({**base, "loss": {"disc_augment": ["color"]}})


class RecordingDiscriminator(torch.nn.Module):
    """Returns the mean of each image as its logit and keeps every batch it is shown."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, images):
        self.seen.append(images.detach().clone())
        return self.scale * images.mean(dim=(1, 2, 3))


@pytest.mark.parametrize("policy", [[], ["cutout"]])
def test_the_discriminator_sees_augmented_images_in_both_steps(policy):
    """With cutout, every image the discriminator sees (the reconstruction in the generator's step; the real one and
    the reconstruction in its own) has a square of zeros, and the generator's gradient passes through the mask;
    without a policy it sees the images themselves."""
    torch.manual_seed(0)
    config = TrainConfig.from_dict({"model": {"model_type": "vqvae"}, "loss": {
        "disc_weight": 0.5, "adaptive_disc_weight": False, "disc_start": 0, "disc_augment": policy}})
    objective = TokenizerObjective(config)
    real, fake = torch.randn(4, 3, 8, 8) + 5, (torch.randn(4, 3, 8, 8) + 5).requires_grad_(True)
    objective.model_module = FixedReconstruction(fake)
    objective.discriminator = objective.raw_discriminator = discriminator = RecordingDiscriminator()
    objective.lecam = objective.perceptual = objective.convnext = None
    objective.usage = SimpleNamespace(update=lambda indices, check_range=True: None)

    generator_step, discriminator_step = objective.step_losses({"pixel_values": real, "num_unreadable": 0}, step=0)
    generator_step.loss.backward()
    seen_fake_g, seen_real, seen_fake_d = discriminator.seen
    if not policy:
        assert torch.equal(seen_fake_g, fake.detach()) and torch.equal(seen_real, real)
        assert torch.equal(seen_fake_d, fake.detach())
        return
    for seen, source in ((seen_fake_g, fake.detach()), (seen_real, real), (seen_fake_d, fake.detach())):
        zero = seen == 0
        assert zero.flatten(1).any(dim=1).all()  # every image has its square
        assert torch.equal(seen[~zero], source[~zero])  # and is the source elsewhere
    # hinge generator loss -0.5 * mean(logits), logits = mean over 192 pixels: d/dpixel = -0.5 / 4 / 192 where kept.
    kept = (seen_fake_g != 0).float()
    assert torch.allclose(fake.grad, -0.5 / 4 / 192 * kept)
    assert not torch.equal(seen_fake_g, seen_fake_d)  # a fresh draw for each call
