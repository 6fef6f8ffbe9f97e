"""A small, repeatable TiTok run on a CPU: the ImageNet-256 benchmark's single-stage setting vs ours.

    python examples/titok_small_run.py --jobs 2   # about an hour on this project's 2-core CPU (two runs at a time,
                                                  # one thread each); writes docs/titok_small_run.{png,json,md}
    python examples/titok_small_run.py --quick    # seconds: the same pipeline at toy size (what CI runs)
    python examples/titok_small_run.py --variants ours --seeds 0 --steps 1500 --output-dir /tmp/probe  # one arm
    python examples/titok_small_run.py --variants benchmark ours --seeds 0 --steps 3000 --gan-weight 0.1 \
        --gan-start 1000 --jobs 2 --output-dir docs/titok_small_run_gan   # with the official GAN, shrunk (README)
    python examples/titok_small_run.py --variants conv --seeds 0 1 --steps 3000 --gan-weight 0.1 \
        --gan-start 1000 --jobs 2 --output-dir docs/titok_small_run_conv_gan   # the convolutional decoder (README)
    python examples/titok_small_run.py --variants conv --seeds 0 1 --steps 8000 --gan-weight 0.1 --gan-start 5000 \
        --ema-decay 0.999 --jobs 2 --output-dir docs/titok_small_run_conv_gan_late   # the GAN on a trained decoder
    python examples/titok_small_run.py --variants conv --seeds 0 1 --steps 8000 --ema-decay 0.999 --jobs 2 \
        --output-dir docs/titok_small_run_conv_8000   # the same without the GAN
    python examples/titok_small_run.py --variants conv --seeds 0 1 --steps 8000 --gan-weight 0.1 --gan-start 5000 \
        --adaptive-gan-weight --ema-decay 0.999 --jobs 2 \
        --output-dir docs/titok_small_run_conv_gan_adaptive   # taming's adaptive GAN weight (README)
    python examples/titok_small_run.py --variants conv --seeds 0 1 --steps 8000 --gan-weight 0.01 --gan-start 5000 \
        --disc-augment --ema-decay 0.999 --jobs 2 \
        --output-dir docs/titok_small_run_conv_gan_fixed_0.01_diffaugment   # DiffAugment on the discriminator (README;
                                                                            # also with --gan-weight 0.001)
    python examples/titok_small_run.py --variants conv --seeds 0 1 --steps 8000 --gan-weight 0.01 --gan-start 5000 \
        --disc-stages 1 --ema-decay 0.999 --jobs 2 \
        --output-dir docs/titok_small_run_conv_gan_fixed_0.01_disc1   # a discriminator that sees as little as the official

The run is a scale-down of the 256 px models that keeps their ratios where the benchmark page's artifact
lives, the single-stage decoder's per-cell pixel head: each decoder grid cell's p x p x C pixels are one
``Linear(decoder width -> p*p*C)`` of that cell's ViT output plus a bias shared by every cell, then one
3x3 conv (``hf_vq.models.titok.TiTokDecoder``). If the decoder is narrower than p*p*C, every cell's pixels
lie in the same width-dimensional subspace around the same bias: a tiling prior the 256 px models do not
have. So (the constants under "the scale-down" below, checked against the 256 px configs by the tests; both
arms have their widths divided by 16 and their depths by 6):

=========================== ============================= ================== ========================
ratio                       official single-stage (256)   benchmark (256)    this run: ours / bench.
=========================== ============================= ================== ========================
encoder / decoder patch     16 / 16 px (16 x 16 grids)    16 / 16 px         4 / 4 px (8 x 8 grids)
tokens per decoder cell     64 / 256 = 0.25 (B-64)        64 / 256 = 0.25    16 / 64 = 0.25
decoder width / p*p*C       1024 / 768 = 1.33 (ViT-L)     768 / 768 = 1.0    64 / 48 = 1.33; 48 / 48
encoder width / p*p*C       768 / 768 = 1.0 (ViT-B)       768 / 768 = 1.0    48 / 48 = 1.0
decoder depth / encoder     24 / 12 = 2                   12 / 12 = 1        4 / 2 = 2; 2 / 2 = 1
=========================== ============================= ================== ========================

Images are 32 px: the same crop regions as this run's earlier 64 px version (sides from 64 px to half the
photograph's short side), resized to 32. 16 tokens of a 1024-code codebook. Earlier versions used 64 px images
with 16 px decoder cells and width 64 (head width / p*p*C = 64 / 768 = 0.083, one token per cell): README.

Both variants are trained with the same data, steps, seeds, initialisation and optimiser (AdamW 2e-3, cosine,
L2 reconstruction loss) on the hf_vq engine (``hf_vq.training.run_training``), each with two fixed seeds (0 and
1, every seed reported). They differ where the benchmark's ``configs/imagenet256/vqgan-titok.yaml`` differs from
the official single-stage recipe (``configs/imagenet256/titok-bl64-vq8k-single-stage.yaml``):

* ``benchmark``: the two-stage models' quantizer used for direct pixel regression: 12-dim l2-normalised
  codes; decoder as wide and as deep as the encoder (ViT-B / ViT-B);
* ``ours``: the official single-stage quantizer: 64-dim codes without normalisation, CVQ dead-code
  restarts (``dead_code_restarts``); a decoder wider (4 / 3) and twice as deep as the encoder (ViT-B / ViT-L).
* ``conv`` (not in the default run; README): the released two-stage models' layout trained in one stage: their
  12-dim l2-normalised codes (with dead-code restarts) and, behind ``ours``' ViT decoder, the MaskGIT convolutional
  pixel decoder (``decoder_type="conv"``, ``CONV_DECODER``) instead of the per-cell linear pixel head.

Initialisation: the official TiTok init (``TiTokModel._init_weights``) except that the ViT linears' std is
scaled with the width (``shrunk_initializer_range``: 0.02 x sqrt(16) = 0.08 for widths shrunk 16-fold), in both
variants; as in the official code one value serves encoder and decoder.

Data (no download): random square crops of every colour photograph in ``skimage.data`` and scikit-learn's
two sample images, plus scikit-image's grey photographs (as RGB). Held-out crops come from three *other*
photographs (``HELD_OUT_SOURCES``), so the metrics measure generalisation, not memory.

Measured on the held-out crops: PSNR, SSIM, codebook usage, token diversity and the repeated-pattern
measure ``periodic_energy_ratio`` (defined in ``cell_periodic_component``: the energy of what a
reconstruction paints identically into every decoder cell, over the same energy of the input; >1 means
the reconstruction adds a pattern repeated at the cell period, the benchmark page's artifact) and
``periodic_fraction`` (the share of a reconstruction's in-cell detail that is the same in every cell; smoothness
alone raises it, so each run's is shown beside that of the held-out photographs blurred to the run's in-cell
detail, ``equally_smooth_photographs``), and ``blockiness`` (``cell_border_jump_ratio``: the squared steps between
neighbouring pixels across cell borders over those inside cells; a grid along the borders, cells painted as patches
that do not join, which the periodic measures miss when it is faint; beside the equally smooth photographs'). Outputs:
a grid (rows: held-out crops, then each (variant, seed)'s reconstructions, then the same again with their detail
amplified ten times around each image's mean colour; shown enlarged ``GRID_ZOOM`` times, nearest neighbour), the
metrics as JSON and a markdown table. LPIPS and the ConvNeXt perceptual term are left out: their pretrained
weights are not downloadable here. The GAN needs none; it is left out by default and ``--gan-weight`` adds it.
For scale, the same metrics of reconstructions that need no tokenizer (``trivial_baselines``): the mean of all
crops, each crop's mean colour, its block means with as many blocks as tokens (the token budget) and its
decoder-cell means (above the token budget). What a run this small shows is stated in the README; it is not
ImageNet.
"""

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from hf_vq.losses import DIFF_AUGMENT_POLICIES

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("benchmark", "ours", "conv")
DEFAULT_VARIANTS = ("benchmark", "ours")  # the README's main table; "conv" has its own commands (README)
SEEDS = (0, 1)
# The benchmark page's single-stage TiTok-B-64 on ImageNet 256 (docs/benchmark-imagenet256.md).
PAGE_ROW = {"codebook_usage": 1.0, "psnr": 17.8995, "ssim": 0.4022, "lpips": 0.2681, "rfid": 4.6691}
# (module, name): scikit-image's colour photographs, scikit-learn's sample images, scikit-image's grey photographs.
TRAIN_SOURCES = (
    ("skimage", "astronaut"), ("skimage", "coffee"), ("skimage", "rocket"), ("skimage", "immunohistochemistry"),
    ("skimage", "hubble_deep_field"), ("skimage", "retina"), ("sklearn", "china.jpg"),
    ("skimage", "coins"), ("skimage", "moon"), ("skimage", "brick"), ("skimage", "grass"), ("skimage", "gravel"),
    ("skimage", "cell"), ("skimage", "clock"), ("skimage", "text"), ("skimage", "page"),
)
HELD_OUT_SOURCES = (("skimage", "chelsea"), ("sklearn", "flower.jpg"), ("skimage", "camera"))
DETAIL_GAIN = 10  # contrast gain of the grid's last rows
GRID_ZOOM = 2  # the grid shows each 32 px image at 64 px (nearest neighbour), so the 4 px cells can be seen
LEARNING_RATE = 2e-3
DEFAULT_STEPS = 8000  # the four runs then take about an hour with --jobs 2 on 2 cores (README)

# -- the scale-down (the module docstring's table) --------------------------------------------
IMAGE_SIZE = 32
# Crops of 64 px to half the photograph's short side (the earlier 64 px run's crops), resized to IMAGE_SIZE.
CROP_MIN_SIDE = 64
# Encoder patches and decoder cells alike, as the 256 px models' 16 px: 8 x 8 grids of 64 cells.
PATCH_SIZE = 4
# 16 tokens for 64 decoder cells: 0.25 per cell, as TiTok-B-64's 64 tokens for 256 cells.
NUM_LATENT_TOKENS = 16
CODEBOOK_SIZE = 1024
# The official ViT sizes (width, layers) of the two arms (``hf_vq.models.titok.configuration_titok.VIT_SIZES``).
OFFICIAL_VIT = {"base": (768, 12), "large": (1024, 24)}
ARCHITECTURES = {"benchmark": ("base", "base"), "ours": ("base", "large"), "conv": ("base", "large")}  # (encoder, decoder)
# "conv": the MaskGIT convolutional pixel decoder behind the ViT decoder, shrunk from the released models' 128 channels,
# multipliers (1, 1, 2, 2, 4), 2 ResNet blocks and 256 latent channels: a quarter of the channels (its GroupNorms need
# multiples of 32), one upsampling per halving of the 4 px cells (two, for the 256 px models' four over 16 px cells),
# one ResNet block per level (step time, README).
CONV_DECODER = {"maskgit_base_channels": 32, "maskgit_channel_multipliers": [1, 1, 2], "maskgit_num_res_blocks": 1,
                "maskgit_z_channels": 64}
# Widths divided by 16 (768 -> 48 = PATCH_SIZE**2 * 3, the pixel head's outputs, as 768 = 16**2 * 3 at 256 px;
# 1024 -> 64), depths by 6 (12 -> 2, 24 -> 4). --quick: widths by 32, depths by 12.
WIDTH_SHRINK, DEPTH_SHRINK = 16, 6
NUM_HEADS = 4


def vit_size(name: str, quick: bool) -> tuple[int, int]:
    """(width, layers) of the official ViT ``name`` ("base" / "large") shrunk for this run."""
    width, layers = OFFICIAL_VIT[name]
    return (width // (2 * WIDTH_SHRINK), layers // (2 * DEPTH_SHRINK)) if quick else (width // WIDTH_SHRINK, layers // DEPTH_SHRINK)


def scale_ratios(variant: str, quick: bool = False) -> dict:
    """The ratios of the module docstring's table for one arm of this run (stored in the JSON)."""
    (encoder_width, encoder_layers), (decoder_width, decoder_layers) = (vit_size(n, quick) for n in ARCHITECTURES[variant])
    cells = (IMAGE_SIZE // PATCH_SIZE) ** 2
    head_outputs = PATCH_SIZE**2 * 3
    return {"tokens_per_decoder_cell": NUM_LATENT_TOKENS / cells, "decoder_width_over_head_outputs": decoder_width / head_outputs,
            "encoder_width_over_head_outputs": encoder_width / head_outputs, "decoder_over_encoder_depth": decoder_layers / encoder_layers}


# -- the repeated-pattern measure ------------------------------------------------------------
def check_cell_size(images: torch.Tensor, cell: int) -> None:
    h, w = images.shape[-2:]
    if h % cell or w % cell:
        raise ValueError(f"Image side {h} x {w} is not a multiple of the cell size {cell}.")


def zero_mean_cells(images: torch.Tensor, cell: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H / cell, cell, W / cell, cell) in float64, each cell's mean removed per channel."""
    check_cell_size(images, cell)
    b, c, h, w = images.shape
    cells = images.double().reshape(b, c, h // cell, cell, w // cell, cell)
    return cells - cells.mean(dim=(3, 5), keepdim=True)


def cell_periodic_component(images: torch.Tensor, cell: int) -> torch.Tensor:
    """What is painted identically into every ``cell`` x ``cell`` cell of each image: the mean over the
    cells of each cell's zero-mean content (mean removed per cell and channel). (B, C, H, W) -> (B, C, cell, cell).

    Since every cell's mean is removed, this equals the cell-periodic average of the image minus the
    image's mean: in Fourier terms, the image's non-zero frequencies that are multiples of the cell
    frequency (what ``tests/test_titok_small_run.py`` checks with numpy's FFT). A photograph's cells
    differ, so their average nearly cancels; a pattern stamped into every cell survives whole.
    """
    return zero_mean_cells(images, cell).mean(dim=(2, 4))


def periodic_energy(images: torch.Tensor, cell: int) -> torch.Tensor:
    """Per image (B,): mean square of ``cell_periodic_component`` (per pixel of one cell)."""
    return cell_periodic_component(images, cell).pow(2).mean(dim=(1, 2, 3))


def cell_detail_energy(images: torch.Tensor, cell: int) -> torch.Tensor:
    """Per image (B,): mean square of each cell's zero-mean content (the detail painted inside the cells)."""
    return zero_mean_cells(images, cell).pow(2).mean(dim=(1, 2, 3, 4, 5))


def periodic_fraction(images: torch.Tensor, cell: int) -> float:
    """How much of the detail painted inside the cells (each cell's zero-mean content) is the same in every
    cell: periodic energy over the cells' detail energy, summed over the set. Between 0 and 1 (1: every
    cell identical; about 1 / number of cells when the cells are unrelated).

    Smooth images score high without repeating anything: in a linear ramp every cell's zero-mean content is
    the same small ramp (fraction 1), and blurring a photograph raises its fraction (the held-out crops: 0.03
    sharp, about 0.25 at a Gaussian sigma of 4 px). So a blurry reconstruction is compared with the
    photographs blurred to the same in-cell detail (``equally_smooth_photographs``), not with the sharp ones."""
    return float(periodic_energy(images, cell).sum() / cell_detail_energy(images, cell).sum().clamp_min(1e-12))


def image_template_fraction(images: torch.Tensor, cell: int) -> float:
    """How much of the detail painted inside the cells is the same at the same place in every image of the set:
    the energy of the mean over the images of each one's in-cell detail (each cell's zero-mean content) over the
    mean energy of that detail. Between 0 and 1 (1: the same detail in every image; about 1 / number of images for
    unrelated images). It catches what ``periodic_fraction`` does not: a motif or a frame a decoder paints at
    fixed positions into every image, whatever the input (a GAN's template), rather than into every cell."""
    detail = zero_mean_cells(images, cell)
    return float(detail.mean(dim=0).pow(2).mean() / detail.pow(2).mean().clamp_min(1e-12))


def cell_border_jump_ratio(images: torch.Tensor, cell: int) -> float:
    """Blockiness: the mean squared difference between neighbouring pixels in different cells (a pair across a
    cell border) over that between neighbours inside a cell, horizontal and vertical pairs pooled. About 1 when
    the borders are not special; above 1 when cells are painted as patches that do not join (a grid along the
    borders, which ``periodic_fraction`` misses when it is faint). Only the borders inside the image count."""
    check_cell_size(images, cell)
    # Both directions as (..., pairs along the last axis): horizontal pairs, then vertical pairs transposed.
    jumps = torch.cat([images.double().diff(dim=3).pow(2), images.double().diff(dim=2).transpose(2, 3).pow(2)], dim=2)
    across = torch.zeros(jumps.shape[-1], dtype=torch.bool)
    across[cell - 1 :: cell] = True  # the pair (k, k + 1) straddles a border when k + 1 is a multiple of cell
    return float(jumps[..., across].mean() / jumps[..., ~across].mean().clamp_min(1e-24))


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel blurred with a Gaussian of ``sigma`` px (edges reflected); sigma 0 returns the images."""
    from scipy.ndimage import gaussian_filter

    if sigma == 0:
        return images.double()
    return torch.from_numpy(gaussian_filter(images.double().numpy(), sigma=(0, 0, sigma, sigma), mode="reflect"))


def equally_smooth_photographs(originals: torch.Tensor, reconstructions: torch.Tensor, cell: int,
                               max_sigma: float = 32.0, iterations: int = 40) -> tuple[float, torch.Tensor]:
    """The originals blurred until they hold as much in-cell detail as the reconstructions (``cell_detail_energy``
    summed over the set; bisection on the Gaussian sigma, which only lowers the detail as it grows). Their
    ``periodic_fraction`` is what smoothing alone gives at that level of detail, with nothing repeated: the
    reference for a reconstruction's. Returns (sigma, blurred); sigma 0 when the reconstructions hold at
    least the originals' detail."""
    target = float(cell_detail_energy(reconstructions, cell).sum())
    if target >= float(cell_detail_energy(originals, cell).sum()):
        return 0.0, originals.double()
    low, high = 0.0, max_sigma
    for _ in range(iterations):
        middle = (low + high) / 2
        if float(cell_detail_energy(gaussian_blur(originals, middle), cell).sum()) > target:
            low = middle
        else:
            high = middle
    return high, gaussian_blur(originals, high)


def periodic_energy_ratio(originals: torch.Tensor, reconstructions: torch.Tensor, cell: int) -> float:
    """Energy of the reconstructions' cell-periodic component over the originals' (summed over the set
    before dividing, so near-flat crops do not dominate). About 1 when the reconstructions keep the
    inputs' periodic content; well above 1 when they add a pattern repeated in every cell (tiling);
    below 1 when they smooth it away (a flat output scores 0)."""
    return float(periodic_energy(reconstructions, cell).sum() / periodic_energy(originals, cell).sum().clamp_min(1e-12))


def amplified_detail(images: torch.Tensor, gain: float = DETAIL_GAIN) -> torch.Tensor:
    """Each image's mean colour plus ``gain`` times its deviation from it, clamped: shows faint structure
    (a pattern repeated in every cell) that a near-flat reconstruction hides."""
    mean = images.mean(dim=(2, 3), keepdim=True)
    return (mean + gain * (images - mean)).clamp(-1, 1)


def token_diversity(indices: torch.Tensor) -> dict:
    """indices (B, N): distinct codes per image / N (1 = no code repeated within an image), and the
    mean number of distinct codes a token position takes across images / B."""
    per_image = np.mean([len(torch.unique(row)) / indices.shape[1] for row in indices])
    per_position = np.mean([len(torch.unique(column)) / indices.shape[0] for column in indices.T])
    return {"distinct_codes_per_image": float(per_image), "distinct_codes_per_position": float(per_position)}


# -- data -------------------------------------------------------------------------------------
def source_image(module: str, name: str):
    from PIL import Image

    if module == "sklearn":
        from sklearn.datasets import load_sample_image

        array = load_sample_image(name)
    else:
        import skimage.data

        array = getattr(skimage.data, name)()
    if array.dtype != np.uint8:
        array = (array.astype(np.float32) * 255).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def random_crops(sources, count: int, seed: int, size: int = IMAGE_SIZE, min_side: int = CROP_MIN_SIDE):
    """``count`` square crops (side ``min_side`` to half the short side) cycling over ``sources``, resized to ``size``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = [source_image(*source) for source in sources]
    crops = []
    for index in range(count):
        image = images[index % len(images)]
        width, height = image.size
        side = int(rng.integers(min_side, max(min_side + 1, min(width, height) // 2 + 1)))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crops.append(image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC))
    return crops


def write_images(images, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        image.save(folder / f"{index:05d}.png")


def to_batch(images) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2).float() / 127.5 - 1


# -- the two variants -----------------------------------------------------------------------
def shrunk_initializer_range(width: int) -> float:
    """The official 0.02 init std is for ViT-B's width 768: at width w, 0.02 * sqrt(768 / w) keeps the same
    ratio to the 1 / sqrt(w) that preserves a signal's size through a linear layer (0.08 at width 48). At a
    plain 0.02 every ViT linear of a width-48 model shrinks its input about sevenfold, and the chain patch
    embedding -> projection -> code embedding -> pixel head -> 3x3 conv starts with almost no signal:
    training then spends most of a short run's steps growing weights (Adam moves each by about the
    learning rate per step)."""
    return 0.02 * (768 / width) ** 0.5


def model_section(variant: str, quick: bool) -> dict:
    """The ``model`` section of one arm: the scale-down of the module docstring's table."""
    (encoder_width, encoder_layers), (decoder_width, decoder_layers) = (vit_size(n, quick) for n in ARCHITECTURES[variant])
    section = {
        "model_type": "titok", "image_size": IMAGE_SIZE, "num_latent_tokens": NUM_LATENT_TOKENS,
        "patch_size": PATCH_SIZE, "decoder_patch_size": PATCH_SIZE,
        "encoder_hidden_size": encoder_width, "encoder_num_layers": encoder_layers, "encoder_num_heads": NUM_HEADS,
        "decoder_hidden_size": decoder_width, "decoder_num_layers": decoder_layers, "decoder_num_heads": NUM_HEADS,
        # One std for encoder and decoder, as the official 0.02 serves ViT-B and ViT-L: that of the ViT-B width.
        "initializer_range": shrunk_initializer_range(vit_size("base", quick)[0]),
        "codebook_size": CODEBOOK_SIZE, "decoder_type": "pixel", "legacy_latent_layout": False, "zero_one_pixels": False,
        "reconstruction_loss": "mse",
    }
    if variant == "benchmark":
        return {**section, "codebook_dim": 12, "l2_norm": True}
    if variant == "conv":  # the released models' l2 12-dim codes and convolutional pixel decoder, trained in one stage
        return {**section, "codebook_dim": 12, "l2_norm": True, "dead_code_restarts": True, "decoder_type": "conv",
                **CONV_DECODER}
    return {**section, "codebook_dim": 64, "l2_norm": False, "dead_code_restarts": True}


# The official single-stage recipe's GAN, shrunk (``--gan-weight``): MaskBit's discriminator (the official one) at
# its smallest width (32: its GroupNorms have 32 groups) with 2 downsampling stages for 32 px images (32 -> 16 -> 8),
# hinge loss, a fixed (not adaptive) weight and LeCam 0.001 as in the official recipe; it sees the run's [-1, 1]
# images.
GAN_DISCRIMINATOR = {"hidden_channels": 32, "num_stages": 2, "blur_resample": True, "blur_kernel_size": 4,
                     "zero_one_pixels": False}
GAN_START_FRACTION = 200_000 / 650_000  # the official run starts the GAN at step 200k of 650k
DISC_LEARNING_RATE = 1e-4  # the official discriminator's


def gan_discriminator(stages: int = GAN_DISCRIMINATOR["num_stages"]) -> dict:
    """The shrunk discriminator's options with ``stages`` downsampling stages (``--disc-stages``)."""
    return {**GAN_DISCRIMINATOR, "num_stages": stages}


def gan_loss_section(weight: float, start: int, adaptive: bool = False, augment: bool = False,
                     stages: int = GAN_DISCRIMINATOR["num_stages"]) -> dict:
    """The ``loss`` keys that add the shrunk official GAN from step ``start``; ``adaptive``:
    ``weight`` multiplies taming's adaptive weight (``--adaptive-gan-weight``) instead of being the weight;
    ``augment``: DiffAugment's three policies on the discriminator's inputs (``--disc-augment``; not official);
    ``stages``: the discriminator's downsampling stages (``--disc-stages``)."""
    return {"disc_weight": weight, "adaptive_disc_weight": adaptive, "disc_start": start, "disc_loss": "hinge",
            "discriminator": "maskbit", "discriminator_options": gan_discriminator(stages), "lecam_weight": 0.001,
            "disc_augment": list(DIFF_AUGMENT_POLICIES) if augment else []}


def train_variant(variant: str, seed: int, data_dir: Path, output_dir: Path, steps: int, quick: bool,
                  gan: dict | None = None, ema_decay: float | None = None):
    """One engine run; ``gan``: {"weight", "start", "disc_learning_rate", "adaptive", "augment", "stages"} of
    ``--gan-weight``, ``--adaptive-gan-weight``, ``--disc-augment`` and ``--disc-stages`` (None: L2 only);
    ``ema_decay``: ``--ema-decay`` (the evaluated model then carries the EMA weights; None: the trained ones)."""
    from accelerate.state import AcceleratorState

    from hf_vq.training import TrainConfig, run_training

    AcceleratorState._reset_state(reset_partial_state=True)  # one engine run after the other in a process
    config = TrainConfig.from_dict({
        "output_dir": str(output_dir / f"{variant}-seed{seed}"), "seed": seed, "model": model_section(variant, quick),
        "data": {"dataset": "imagefolder", "train_data_dir": str(data_dir / "train"),
                 "eval_data_dir": str(data_dir / "held_out"), "image_size": IMAGE_SIZE},
        "loss": {"reconstruction": "mse", **(gan_loss_section(gan["weight"], gan["start"], gan["adaptive"], gan["augment"],
                                                                gan["stages"]) if gan else {})},
        "training": {"batch_size": 8 if quick else 32, "max_steps": steps, "learning_rate": LEARNING_RATE,
                     "disc_learning_rate": gan["disc_learning_rate"] if gan else None, "optimizer": "adamw",
                     "adam_beta2": 0.99, "weight_decay": 1e-4, "lr_scheduler": "cosine",
                     "warmup_steps": 0 if quick else 100, "max_grad_norm": 1.0, "log_every": max(1, steps // 10),
                     "ema_decay": ema_decay,
                     "report_to": "none", "overwrite": True},
        "eval": {"batch_size": 64, "num_grid_images": 8},
    })
    return run_training(config)


def train_and_measure(variant: str, seed: int, data_dir: Path, steps: int, quick: bool, held_out: torch.Tensor,
                      threads: int | None = None, gan: dict | None = None,
                      ema_decay: float | None = None) -> tuple[dict, torch.Tensor, float, list]:
    """One (variant, seed): train, then measure on the held-out crops. Returns (metrics, the first 8
    reconstructions, seconds per step with data loading and the final evaluation, the engine's logged losses).
    ``threads``: torch threads of this run (``--jobs`` gives each parallel run its share of the cores)."""
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    result = train_variant(variant, seed, data_dir, data_dir / "runs", steps, quick, gan, ema_decay)
    seconds_per_step = (time.perf_counter() - start) / steps
    row, reconstructions = measure(result.model, held_out)
    return row, reconstructions[:8], seconds_per_step, result.history


@torch.no_grad()
def measure(model, originals: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """PSNR / SSIM as hf_vq's evaluation computes them (images in [-1, 1], per image, then the mean),
    codebook usage over the set, token diversity, the repeated-pattern measures and blockiness (each beside that of
    the held-out photographs blurred to the reconstructions' in-cell detail)."""
    from hf_vq.evaluation.metrics import psnr, ssim

    model.eval()
    encoded = model.encode(originals)
    reconstructions = model.decode(encoded.quantized).sample.clamp(-1, 1)
    cell = model.config.decoder_patch_size
    sigma, equally_smooth = equally_smooth_photographs(originals, reconstructions, cell)
    row = {
        "psnr": float(psnr(reconstructions, originals).mean()), "ssim": float(ssim(reconstructions, originals).mean()),
        "codebook_usage": len(torch.unique(encoded.indices)) / model.config.codebook_size,
        "periodic_energy_ratio": periodic_energy_ratio(originals, reconstructions, cell),
        "periodic_fraction": periodic_fraction(reconstructions, cell),
        "equally_smooth_periodic_fraction": periodic_fraction(equally_smooth, cell), "equally_smooth_sigma": sigma,
        "template_fraction": image_template_fraction(reconstructions, cell),
        "equally_smooth_template_fraction": image_template_fraction(equally_smooth, cell),
        "blockiness": cell_border_jump_ratio(reconstructions, cell),
        "equally_smooth_blockiness": cell_border_jump_ratio(equally_smooth, cell),
        **token_diversity(encoded.indices),
    }
    return row, reconstructions


def block_means(images: torch.Tensor, block: int) -> torch.Tensor:
    """Each image replaced by the means of its ``block`` x ``block`` blocks (nearest upsampling)."""
    b, c, h, w = images.shape
    if h % block or w % block:
        raise ValueError(f"Image side {h} x {w} is not a multiple of the block size {block}.")
    means = images.reshape(b, c, h // block, block, w // block, block).mean(dim=(3, 5), keepdim=True)
    return means.expand(b, c, h // block, block, w // block, block).reshape(b, c, h, w)


@torch.no_grad()
def trivial_baselines(originals: torch.Tensor, cell: int, num_tokens: int) -> dict:
    """PSNR / SSIM of reconstructions that need no tokenizer, on the same crops: every crop replaced by the
    mean of all crops, by its own mean colour, by the means of as many blocks as there are tokens (the token
    budget: 16 blocks x 3 numbers for 16 codes of 10 bits, about 3 bits a number) and by the means of its
    ``cell`` px decoder cells (more numbers than the tokens carry)."""
    from hf_vq.evaluation.metrics import psnr, ssim

    side = originals.shape[-1]
    blocks_per_side = round(num_tokens**0.5)
    if blocks_per_side**2 != num_tokens or side % blocks_per_side:
        raise ValueError(f"{num_tokens} tokens do not make a square grid of blocks of a {side} px image.")
    block = side // blocks_per_side
    cells = (side // cell) ** 2
    candidates = {
        "mean image of all crops": originals.mean(dim=0, keepdim=True).expand_as(originals),
        "each crop's mean colour": originals.mean(dim=(2, 3), keepdim=True).expand_as(originals),
        f"each crop's {num_tokens} block means ({block} px; token budget)": block_means(originals, block),
        f"each crop's {cells} decoder-cell means ({cell} px; above the token budget)": block_means(originals, cell),
    }
    return {name: {"psnr": float(psnr(images, originals).mean()), "ssim": float(ssim(images, originals).mean())}
            for name, images in candidates.items()}


COLUMNS = ("psnr", "ssim", "codebook_usage", "periodic_energy_ratio", "periodic_fraction",
           "equally_smooth_periodic_fraction", "blockiness", "equally_smooth_blockiness", "template_fraction",
           "equally_smooth_template_fraction", "distinct_codes_per_image", "distinct_codes_per_position")


# What "ours makes no repeated patterns" needs, per seed (the README states the verdict; the grid is looked at too).
# At most this many times the periodic fraction of the held-out photographs: the sharp ones (the first bar set,
# which blur alone fails: ``periodic_fraction``) and the ones blurred to the run's in-cell detail.
PERIODIC_FRACTION_LIMIT = 2.0
PERIODIC_ENERGY_LIMIT = 1.1  # about 1: paints no more into every cell than the photographs hold
# A grid along the cell borders (cells painted as patches that do not join), which the periodic measures miss when
# it is faint: the steps across the borders at most 20% above those of the equally smooth photographs.
BLOCKINESS_LIMIT = 1.2
# A template painted at the same place into every image (a motif, a frame): the share of in-cell detail common to all
# images at most this many times the held-out photographs', sharp and blurred to the run's in-cell detail (blur
# raises it a little, as it raises the periodic fraction, so a blurry run is judged by the second).
TEMPLATE_FRACTION_LIMIT = 2.0


def checks(report: dict) -> dict:
    """Per run: does it beat each crop's mean colour and the token-budget block means in PSNR, and is its
    repeated-pattern measure near the photographs', sharp and equally smooth (``PERIODIC_FRACTION_LIMIT``,
    ``PERIODIC_ENERGY_LIMIT``), are its cell borders no more stepped than the equally smooth photographs'
    (``BLOCKINESS_LIMIT``), and is the detail it paints at the same place in every image near the photographs',
    sharp and equally smooth (``TEMPLATE_FRACTION_LIMIT``; only in reports written since that measure)?"""
    baselines = report["baselines"]
    mean_colour = baselines["each crop's mean colour"]["psnr"]
    token_budget = next(row["psnr"] for name, row in baselines.items() if "token budget)" in name)
    limit = PERIODIC_FRACTION_LIMIT * report["input_periodic_fraction"]
    template_limit = TEMPLATE_FRACTION_LIMIT * report.get("input_template_fraction", float("nan"))
    return {name: {"beats_mean_colour": row["psnr"] > mean_colour, "beats_token_budget_blocks": row["psnr"] > token_budget,
                   "periodic_fraction_near_photographs": row["periodic_fraction"] <= limit,
                   "periodic_fraction_near_equally_smooth_photographs":
                       row["periodic_fraction"] <= PERIODIC_FRACTION_LIMIT * row["equally_smooth_periodic_fraction"],
                   "periodic_energy_ratio_at_most_about_1": row["periodic_energy_ratio"] <= PERIODIC_ENERGY_LIMIT,
                   "no_grid_along_cell_borders": row["blockiness"] <= BLOCKINESS_LIMIT * row["equally_smooth_blockiness"],
                   **({"template_fraction_near_photographs": row["template_fraction"] <= template_limit,
                       "template_fraction_near_equally_smooth_photographs":
                           row["template_fraction"] <= TEMPLATE_FRACTION_LIMIT * row["equally_smooth_template_fraction"]}
                      if "template_fraction" in row else {})}  # absent from the reports written before this measure
            for name, row in report["metrics"].items()}


def markdown(report: dict) -> str:
    """One line per (variant, seed), then the page's row, the no-tokenizer rows and the checks. Renders the reports
    of earlier versions too: a measure they lack (e.g. the template fraction) shows as "-"."""
    lines = ["| run (held-out crops) | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in report["metrics"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4f}" if c in row else "-" for c in COLUMNS) + " |")
    lines.append(f"| benchmark page (ImageNet 256, TiTok-B-64, 1M steps; rFID {PAGE_ROW['rfid']}; not comparable) | "
                 f"{PAGE_ROW['psnr']:.4f} | {PAGE_ROW['ssim']:.4f} | {PAGE_ROW['codebook_usage']:.4f} |" + " - |" * (len(COLUMNS) - 3))
    for name, row in report["baselines"].items():
        lines.append(f"| no tokenizer: {name} | {row['psnr']:.4f} | {row['ssim']:.4f} |" + " - |" * (len(COLUMNS) - 2))
    data, scale = report["data"], report["scale"]
    check_lines = [f"- {name}: " + ", ".join(f"{check} {'yes' if passed else 'NO'}" for check, passed in row.items())
                   for name, row in report["checks"].items()]
    timing = ", ".join(f"{name} {seconds:.3f}" for name, seconds in report["seconds_per_step"].items())
    # Reports written before "jobs" was recorded do not say how many runs shared the cores.
    jobs = report.get("jobs")
    sharing = "" if jobs is None else "; one run at a time" if jobs == 1 else f"; {jobs} runs at a time sharing the cores"
    sigmas = ", ".join(f"{name} {row['equally_smooth_sigma']:.2f}" for name, row in report["metrics"].items())
    gan, losses = report["gan"], "L2 loss only"
    if gan:
        # Reports written before --adaptive-gan-weight / --disc-augment lack those keys: fixed weight, images as they are.
        weight = f"{gan['weight']:g}" + (" x taming's adaptive weight" if gan.get("adaptive") else "")
        augment = ", DiffAugment (color, translation, cutout) on the discriminator's inputs" if gan.get("augment") else ""
        # Reports written before --disc-stages have no "stages" key: their discriminators had the default stages.
        stages = gan.get("stages", GAN_DISCRIMINATOR["num_stages"])
        losses = (f"L2 + GAN (weight {weight} from step {gan['start']}, discriminator learning rate "
                  f"{gan['disc_learning_rate']:g}, {stages} discriminator stage{'s' if stages > 1 else ''}{augment})")
    if report.get("ema_decay"):
        losses += f"; evaluated with the EMA of the weights (decay {report['ema_decay']:g})"
    return (f"Small run: {report['steps']} steps of batch {report['batch_size']} per variant and seed ({losses}), "
            f"{data['train_crops']} training crops ({IMAGE_SIZE} px) of {len(data['train_sources'])} photographs; "
            f"metrics on {data['held_out_crops']} held-out crops of {', '.join(data['held_out_sources'])}. "
            f"Encoder patches and decoder cells {scale['patch_size']} px, {scale['num_latent_tokens']} tokens "
            f"({scale[next(iter(report['variants']))]['tokens_per_decoder_cell']:.2f} per decoder cell); "
            "decoder width / pixel-head outputs: "
            + ", ".join(f"{v} {scale[v]['decoder_width_over_head_outputs']:.2f}" if report["variants"][v]["decoder_type"] == "pixel"
                        else f"{v} - (no per-cell pixel head)" for v in report["variants"])
            + f". Input periodic energy fraction (held-out): {report['input_periodic_fraction']:.4f}"
            + (f"; input template fraction: {report['input_template_fraction']:.4f}"
               if "input_template_fraction" in report else "") + ".\n\n"
            + "\n".join(lines) + "\n\n"
            + f"Gaussian blur (sigma, px) that gives the held-out photographs each run's in-cell detail: {sigmas}.\n\n"
            + f"Checks (periodic fraction <= {PERIODIC_FRACTION_LIMIT:g} x the photographs', sharp and blurred to the "
            f"run's in-cell detail; energy ratio <= {PERIODIC_ENERGY_LIMIT:g}; blockiness <= {BLOCKINESS_LIMIT:g} x the "
            f"equally smooth photographs'; template fraction <= {TEMPLATE_FRACTION_LIMIT:g} x the photographs', sharp and "
            "equally smooth):\n" + "\n".join(check_lines) + "\n\n"
            f"Seconds per training step (wall, each run's, with data loading and the final evaluation{sharing}): "
            f"{timing}; whole script {report['seconds']} s.\n")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy size and a few steps (seconds; what CI runs)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps per variant and seed (default {DEFAULT_STEPS}; --quick 3)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(DEFAULT_VARIANTS),
                        help="arms to train (default benchmark and ours)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default 0 1; --quick 0)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained at once in separate processes, each on cores / jobs torch threads (default 1: "
                             "one after the other)")
    parser.add_argument("--gan-weight", type=float, default=0.0,
                        help="add the official recipe's GAN, shrunk (GAN_DISCRIMINATOR), with this fixed weight (official "
                             "0.1; default 0: L2 only, the README's main table)")
    parser.add_argument("--gan-start", type=int, default=None,
                        help="step at which the GAN starts (default: the official 200k / 650k of the steps)")
    parser.add_argument("--adaptive-gan-weight", action="store_true",
                        help="--gan-weight multiplies taming's adaptive weight (the GAN gradient scaled to the L2 "
                             "gradient's size at the decoder's last layer) instead of being the weight (official: fixed)")
    parser.add_argument("--disc-augment", action="store_true",
                        help="DiffAugment (color, translation, cutout) on every image the discriminator sees, real or "
                             "reconstructed (not in the official recipe: for small datasets, which a discriminator "
                             "memorises)")
    parser.add_argument("--disc-stages", type=int, default=GAN_DISCRIMINATOR["num_stages"],
                        help=f"the discriminator's downsampling stages (default {GAN_DISCRIMINATOR['num_stages']}; "
                             "1 gives each logit about the share of a 32 px image that the official discriminator's "
                             "logits see of a 256 px one)")
    parser.add_argument("--disc-learning-rate", type=float, default=DISC_LEARNING_RATE,
                        help=f"the discriminator's learning rate (default {DISC_LEARNING_RATE:g}, the official)")
    parser.add_argument("--ema-decay", type=float, default=None,
                        help="keep an EMA of the weights with this decay (official single stage: 0.999) and evaluate it "
                             "(default: none, the weights as trained)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where the grid, metrics and table go (default docs/; --quick: a temporary folder)")
    args = parser.parse_args(argv)
    steps = args.steps or (3 if args.quick else DEFAULT_STEPS)
    if steps < 1:
        raise SystemExit(f"--steps must be at least 1; got {steps}.")
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1; got {args.jobs}.")
    gan = None
    if args.gan_weight < 0 or args.disc_learning_rate <= 0:
        raise SystemExit(f"--gan-weight must be at least 0 and --disc-learning-rate above 0; got {args.gan_weight} "
                         f"and {args.disc_learning_rate}.")
    if args.gan_weight > 0:
        start = round(GAN_START_FRACTION * steps) if args.gan_start is None else args.gan_start
        if not 0 <= start < steps:
            raise SystemExit(f"--gan-start must be a step in [0, {steps}) so that the GAN trains; got {start}.")
        gan = {"weight": args.gan_weight, "start": start, "disc_learning_rate": args.disc_learning_rate,
               "adaptive": args.adaptive_gan_weight, "augment": args.disc_augment, "stages": args.disc_stages}
    elif (args.gan_start is not None or args.adaptive_gan_weight or args.disc_augment
          or args.disc_stages != GAN_DISCRIMINATOR["num_stages"]):
        raise SystemExit("--gan-start, --adaptive-gan-weight, --disc-augment and --disc-stages need --gan-weight above 0 "
                         "(without it no GAN is trained).")
    if args.disc_stages < 1:
        raise SystemExit(f"--disc-stages must be at least 1; got {args.disc_stages}.")
    if args.ema_decay is not None and not 0 < args.ema_decay < 1:
        raise SystemExit(f"--ema-decay must be in (0, 1); got {args.ema_decay}.")
    seeds = tuple(args.seeds) if args.seeds else (SEEDS[:1] if args.quick else SEEDS)
    variants = [v for v in VARIANTS if v in args.variants]
    output_dir = args.output_dir or (Path(tempfile.mkdtemp(prefix="titok_small_run_")) if args.quick else REPO / "docs")
    output_dir.mkdir(parents=True, exist_ok=True)
    num_train, num_held_out = (32, 12) if args.quick else (4096, 192)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        write_images(random_crops(TRAIN_SOURCES, num_train, seed=0), data_dir / "train")
        held_out_images = random_crops(HELD_OUT_SOURCES, num_held_out, seed=1)
        write_images(held_out_images, data_dir / "held_out")
        held_out = to_batch(held_out_images)
        runs = [(variant, seed) for variant in variants for seed in seeds]
        rows, shown, seconds_per_step, histories = {}, [], {}, {}
        with ExitStack() as stack:
            if args.jobs == 1:
                results = (train_and_measure(variant, seed, data_dir, steps, args.quick, held_out, gan=gan,
                                             ema_decay=args.ema_decay)
                           for variant, seed in runs)
            else:  # each run in its own process (spawned: a fresh torch and Accelerate state), results in the runs' order
                threads = max(1, (os.cpu_count() or 1) // args.jobs)
                pool = stack.enter_context(ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")))
                results = pool.map(train_and_measure, *zip(*[(v, s, data_dir, steps, args.quick, held_out, threads, gan,
                                                               args.ema_decay)
                                                              for v, s in runs]))
            for (variant, seed), (row, reconstructions, run_seconds_per_step, history) in zip(runs, results):
                name = f"{variant}, seed {seed}"
                rows[name], seconds_per_step[name], histories[name] = row, run_seconds_per_step, history
                shown.append(reconstructions)
                print(f"{name}: {row} ({run_seconds_per_step:.3f} s/step)", flush=True)
    from torch.nn.functional import interpolate
    from torchvision.utils import save_image

    grids = [held_out[:8], *shown, *(amplified_detail(images) for images in shown)]
    grid = interpolate(torch.cat(grids) * 0.5 + 0.5, scale_factor=GRID_ZOOM, mode="nearest")
    save_image(grid, output_dir / "titok_small_run.png", nrow=8, padding=1)
    report = {
        "steps": steps, "batch_size": 8 if args.quick else 32, "seeds": list(seeds), "quick": args.quick,
        "data": {"train_crops": num_train, "held_out_crops": num_held_out, "image_size": IMAGE_SIZE,
                 "crop_min_side": CROP_MIN_SIDE, "train_sources": [name for _, name in TRAIN_SOURCES],
                 "held_out_sources": [name for _, name in HELD_OUT_SOURCES]},
        "scale": {"patch_size": PATCH_SIZE, "num_latent_tokens": NUM_LATENT_TOKENS,
                  **{v: scale_ratios(v, args.quick) for v in variants}},
        # How much of the photographs' own cell detail is the same in every cell (near 1 / cells: little).
        "input_periodic_fraction": periodic_fraction(held_out, PATCH_SIZE),
        # How much of their cell detail is the same at the same place in every held-out photograph (near 1 / crops).
        "input_template_fraction": image_template_fraction(held_out, PATCH_SIZE),
        "variants": {v: model_section(v, args.quick) for v in variants},
        "learning_rate": LEARNING_RATE, "gan": gan and {**gan, "discriminator": gan_discriminator(gan["stages"])},
        "ema_decay": args.ema_decay, "jobs": args.jobs, "metrics": rows,
        "baselines": trivial_baselines(held_out, PATCH_SIZE, NUM_LATENT_TOKENS),
        "benchmark_page_row": PAGE_ROW, "seconds_per_step": seconds_per_step,
        # The engine's logged losses (every steps / 10), e.g. the GAN's adversarial weight and discriminator logits.
        "training_history": histories,
        "seconds": round(time.perf_counter() - start, 1),
    }
    report["checks"] = checks(report)
    (output_dir / "titok_small_run.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "titok_small_run.md").write_text(markdown(report))
    print(markdown(report))
    print(f"Wrote {output_dir / 'titok_small_run.png'} (rows: held-out crops, then {', '.join(rows)}, then the same "
          f"with detail x{DETAIL_GAIN}; shown x{GRID_ZOOM}), "
          f"{output_dir / 'titok_small_run.json'}, {output_dir / 'titok_small_run.md'} in {report['seconds']} s")
    return report


if __name__ == "__main__":
    main()
