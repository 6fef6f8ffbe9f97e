"""A small, repeatable TiTok run on a CPU: the ImageNet-256 benchmark's single-stage setting vs ours.

    python examples/titok_small_run.py            # about 40 minutes on a 2-core CPU shared at load 4 to 5;
                                                  # writes docs/titok_small_run.{png,json,md}
    python examples/titok_small_run.py --quick    # seconds: the same pipeline at toy size (what CI runs)

Both variants are the same shrunk TiTok (64 px images; the encoder reads 8 px patches, an 8 x 8 grid; the
decoder paints a 4 x 4 grid of 16 px cells, the cell size of the 256 px models; 16 tokens of a 1024-code
codebook, ViT width 64) trained with the same data, steps, seeds, initialisation and optimiser (AdamW 2e-3,
cosine, L2 reconstruction loss) on the hf_vq engine (``hf_vq.training.run_training``), each with two fixed
seeds (0 and 1, every seed reported). They differ where the benchmark's ``configs/imagenet256/vqgan-titok.yaml``
differs from the official single-stage recipe (``configs/imagenet256/titok-bl64-vq8k-single-stage.yaml``):

* ``benchmark``: the two-stage models' quantizer used for direct pixel regression: 12-dim l2-normalised
  codes; decoder as deep as the encoder (ViT-B / ViT-B);
* ``ours``: the official single-stage quantizer: 64-dim codes without normalisation, CVQ dead-code
  restarts (``dead_code_restarts``); a decoder twice as deep as the encoder (ViT-B / ViT-L).

Initialisation: the official TiTok init (``TiTokModel._init_weights``) except that the ViT linears' std is
scaled to the narrow width (``shrunk_initializer_range``: 0.069 instead of 0.02 at width 64), in both variants.

Data (no download): random square crops of every colour photograph in ``skimage.data`` and scikit-learn's
two sample images, plus scikit-image's grey photographs (as RGB), resized to 64 px. Held-out crops come from
three *other* photographs (``HELD_OUT_SOURCES``), so the metrics measure generalisation, not memory.

Measured on the held-out crops: PSNR, SSIM, codebook usage, token diversity and the repeated-pattern
measure ``periodic_energy_ratio`` (defined in ``cell_periodic_component``: the energy of what a
reconstruction paints identically into every decoder cell, over the same energy of the input; >1 means
the reconstruction adds a pattern repeated at the cell period, the benchmark page's artifact) and
``periodic_fraction`` (the share of a reconstruction's in-cell detail that is the same in every cell). Outputs:
a grid (rows: held-out crops, benchmark setting, ours, then both again with their detail amplified
ten times around each image's mean colour; seed 0), the metrics as JSON and a markdown table. LPIPS,
the ConvNeXt perceptual term and the GAN are left out: their pretrained weights are not
downloadable here. For scale, the same metrics of three reconstructions that need no tokenizer
(``trivial_baselines``: the mean of all crops, each crop's mean colour, its 16 px cell means). What a run
this small shows is stated in the README; it is not ImageNet.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("benchmark", "ours")
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
IMAGE_SIZE = 64
DETAIL_GAIN = 10  # contrast gain of the grid's last rows
# The encoder reads 8 px patches (an 8 x 8 grid, as the 256 px models' 16 px patches give a 16 x 16 one); the
# decoder paints 16 px cells (the 256 px models' cell size). At 16 px encoder patches (a 4 x 4 grid) the same
# run stayed below the crops' mean colours in 1500 steps (README).
ENCODER_PATCH_SIZE = 8
LEARNING_RATE = 2e-3


# -- the repeated-pattern measure ------------------------------------------------------------
def cell_periodic_component(images: torch.Tensor, cell: int) -> torch.Tensor:
    """What is painted identically into every ``cell`` x ``cell`` cell of each image: the mean over the
    cells of each cell's zero-mean content (mean removed per cell and channel). (B, C, H, W) -> (B, C, cell, cell).

    Since every cell's mean is removed, this equals the cell-periodic average of the image minus the
    image's mean: in Fourier terms, the image's non-zero frequencies that are multiples of the cell
    frequency (what ``tests/test_titok_small_run.py`` checks with numpy's FFT). A photograph's cells
    differ, so their average nearly cancels; a pattern stamped into every cell survives whole.
    """
    b, c, h, w = images.shape
    if h % cell or w % cell:
        raise ValueError(f"Image side {h} x {w} is not a multiple of the cell size {cell}.")
    cells = images.double().reshape(b, c, h // cell, cell, w // cell, cell)
    cells = cells - cells.mean(dim=(3, 5), keepdim=True)
    return cells.mean(dim=(2, 4))


def periodic_energy(images: torch.Tensor, cell: int) -> torch.Tensor:
    """Per image (B,): mean square of ``cell_periodic_component`` (per pixel of one cell)."""
    return cell_periodic_component(images, cell).pow(2).mean(dim=(1, 2, 3))


def periodic_fraction(images: torch.Tensor, cell: int) -> float:
    """How much of the detail painted inside the cells (each cell's zero-mean content) is the same in every
    cell: periodic energy over the cells' detail energy, summed over the set. Between 0 and 1 (1: every
    cell identical; about 1 / number of cells when the cells are unrelated)."""
    b, c, h, w = images.shape
    cells = images.double().reshape(b, c, h // cell, cell, w // cell, cell)
    detail = (cells - cells.mean(dim=(3, 5), keepdim=True)).pow(2).mean(dim=(1, 2, 3, 4, 5))
    return float(periodic_energy(images, cell).sum() / detail.sum().clamp_min(1e-12))


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


def random_crops(sources, count: int, seed: int, size: int = IMAGE_SIZE):
    """``count`` square crops (side ``size`` to half the short side) cycling over ``sources``, resized to ``size``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = [source_image(*source) for source in sources]
    crops = []
    for index in range(count):
        image = images[index % len(images)]
        width, height = image.size
        side = int(rng.integers(size, max(size + 1, min(width, height) // 2 + 1)))
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
    ratio to the 1 / sqrt(w) that preserves a signal's size through a linear layer (0.069 at width 64). At a
    plain 0.02 every ViT linear of a width-64 model shrinks its input about sixfold, and the chain patch
    embedding -> projection -> code embedding -> pixel head -> 3x3 conv starts with almost no signal:
    training then spends most of a short run's steps growing weights (Adam moves each by about the
    learning rate per step)."""
    return 0.02 * (768 / width) ** 0.5


def model_section(variant: str, quick: bool) -> dict:
    width = 32 if quick else 64
    shared = {
        "model_type": "titok", "image_size": IMAGE_SIZE, "num_latent_tokens": 16, "patch_size": ENCODER_PATCH_SIZE,
        "decoder_patch_size": 16, "encoder_hidden_size": width, "encoder_num_layers": 1 if quick else 2,
        "encoder_num_heads": 4, "decoder_hidden_size": width, "decoder_num_heads": 4,
        "initializer_range": shrunk_initializer_range(width),
        "codebook_size": 1024, "decoder_type": "pixel", "legacy_latent_layout": False, "zero_one_pixels": False,
        "reconstruction_loss": "mse",
    }
    if variant == "benchmark":
        return {**shared, "decoder_num_layers": 1 if quick else 2, "codebook_dim": 12, "l2_norm": True}
    return {**shared, "decoder_num_layers": 2 if quick else 4, "codebook_dim": 64, "l2_norm": False,
            "dead_code_restarts": True}


def train_variant(variant: str, seed: int, data_dir: Path, output_dir: Path, steps: int, quick: bool):
    from accelerate.state import AcceleratorState

    from hf_vq.training import TrainConfig, run_training

    AcceleratorState._reset_state(reset_partial_state=True)  # one engine run after the other in a process
    config = TrainConfig.from_dict({
        "output_dir": str(output_dir / f"{variant}-seed{seed}"), "seed": seed, "model": model_section(variant, quick),
        "data": {"dataset": "imagefolder", "train_data_dir": str(data_dir / "train"),
                 "eval_data_dir": str(data_dir / "held_out"), "image_size": IMAGE_SIZE},
        "loss": {"reconstruction": "mse"},
        "training": {"batch_size": 8 if quick else 32, "max_steps": steps, "learning_rate": LEARNING_RATE, "optimizer": "adamw",
                     "adam_beta2": 0.99, "weight_decay": 1e-4, "lr_scheduler": "cosine",
                     "warmup_steps": 0 if quick else 100, "max_grad_norm": 1.0, "log_every": max(1, steps // 10),
                     "report_to": "none", "overwrite": True},
        "eval": {"batch_size": 64, "num_grid_images": 8},
    })
    return run_training(config)


@torch.no_grad()
def measure(model, originals: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """PSNR / SSIM as hf_vq's evaluation computes them (images in [-1, 1], per image, then the mean),
    codebook usage over the set, token diversity and the repeated-pattern measure."""
    from hf_vq.evaluation.metrics import psnr, ssim

    model.eval()
    encoded = model.encode(originals)
    reconstructions = model.decode(encoded.quantized).sample.clamp(-1, 1)
    cell = model.config.decoder_patch_size
    row = {
        "psnr": float(psnr(reconstructions, originals).mean()), "ssim": float(ssim(reconstructions, originals).mean()),
        "codebook_usage": len(torch.unique(encoded.indices)) / model.config.codebook_size,
        "periodic_energy_ratio": periodic_energy_ratio(originals, reconstructions, cell),
        "periodic_fraction": periodic_fraction(reconstructions, cell),
        **token_diversity(encoded.indices),
    }
    return row, reconstructions


@torch.no_grad()
def trivial_baselines(originals: torch.Tensor, cell: int) -> dict:
    """PSNR / SSIM of reconstructions that need no tokenizer, on the same crops: every crop replaced by the
    mean of all crops, by its own mean colour, and by its grid of ``cell`` px cell means (nearest upsampling)."""
    from hf_vq.evaluation.metrics import psnr, ssim

    b, c, h, w = originals.shape
    cell_means = originals.reshape(b, c, h // cell, cell, w // cell, cell).mean(dim=(3, 5), keepdim=True)
    candidates = {
        "mean image of all crops": originals.mean(dim=0, keepdim=True).expand_as(originals),
        "each crop's mean colour": originals.mean(dim=(2, 3), keepdim=True).expand_as(originals),
        f"each crop's {cell} px cell means": cell_means.expand(b, c, h // cell, cell, w // cell, cell).reshape(b, c, h, w),
    }
    return {name: {"psnr": float(psnr(images, originals).mean()), "ssim": float(ssim(images, originals).mean())}
            for name, images in candidates.items()}


COLUMNS = ("psnr", "ssim", "codebook_usage", "periodic_energy_ratio", "periodic_fraction",
           "distinct_codes_per_image", "distinct_codes_per_position")


def markdown(report: dict) -> str:
    """One line per (variant, seed), then the page's row."""
    lines = ["| run (held-out crops) | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in report["metrics"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4f}" for c in COLUMNS) + " |")
    lines.append(f"| benchmark page (ImageNet 256, TiTok-B-64, 1M steps; rFID {PAGE_ROW['rfid']}) | "
                 f"{PAGE_ROW['psnr']:.4f} | {PAGE_ROW['ssim']:.4f} | {PAGE_ROW['codebook_usage']:.4f} | - | - | - | - |")
    for name, row in report["baselines"].items():
        lines.append(f"| no tokenizer: {name} | {row['psnr']:.4f} | {row['ssim']:.4f} | - | - | - | - | - |")
    data = report["data"]
    return (f"Small run: {report['steps']} steps of batch {report['batch_size']} per variant and seed, "
            f"{data['train_crops']} training crops ({IMAGE_SIZE} px) of {len(data['train_sources'])} photographs; "
            f"metrics on {data['held_out_crops']} held-out crops of {', '.join(data['held_out_sources'])}. "
            f"Input periodic energy fraction (held-out): {report['input_periodic_fraction']:.4f}.\n\n"
            + "\n".join(lines) + "\n")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy size and a few steps (seconds; what CI runs)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per variant and seed (default 3000; --quick 3)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where the grid, metrics and table go (default docs/; --quick: a temporary folder)")
    args = parser.parse_args(argv)
    steps = args.steps or (3 if args.quick else 3000)
    seeds = SEEDS[:1] if args.quick else SEEDS
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
        rows, shown = {}, []
        for variant in VARIANTS:
            for seed in seeds:
                result = train_variant(variant, seed, data_dir, data_dir / "runs", steps, args.quick)
                rows[f"{variant}, seed {seed}"], reconstructions = measure(result.model, held_out)
                if seed == seeds[0]:
                    shown.append(reconstructions[:8])
    from torchvision.utils import save_image

    grids = [held_out[:8], *shown, *(amplified_detail(images) for images in shown)]
    save_image(torch.cat(grids) * 0.5 + 0.5, output_dir / "titok_small_run.png", nrow=8, padding=1)
    cell = model_section("ours", args.quick)["decoder_patch_size"]
    report = {
        "steps": steps, "batch_size": 8 if args.quick else 32, "seeds": list(seeds), "quick": args.quick,
        "data": {"train_crops": num_train, "held_out_crops": num_held_out, "image_size": IMAGE_SIZE,
                 "train_sources": [name for _, name in TRAIN_SOURCES],
                 "held_out_sources": [name for _, name in HELD_OUT_SOURCES]},
        # How much of the photographs' own cell detail is the same in every cell (near 1 / cells: little).
        "input_periodic_fraction": periodic_fraction(held_out, cell),
        "variants": {v: model_section(v, args.quick) for v in VARIANTS},
        "learning_rate": LEARNING_RATE, "metrics": rows, "baselines": trivial_baselines(held_out, cell),
        "benchmark_page_row": PAGE_ROW, "seconds": round(time.perf_counter() - start, 1),
    }
    (output_dir / "titok_small_run.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "titok_small_run.md").write_text(markdown(report))
    print(markdown(report))
    print(f"Wrote {output_dir / 'titok_small_run.png'} (rows: held-out crops, benchmark setting, ours, then both with detail x{DETAIL_GAIN}; "
          f"seed {seeds[0]}), "
          f"{output_dir / 'titok_small_run.json'}, {output_dir / 'titok_small_run.md'} in {report['seconds']} s")
    return report


if __name__ == "__main__":
    main()
