"""A small, repeatable TiTok run on a CPU: the ImageNet-256 benchmark's single-stage setting vs ours.

    python examples/titok_small_run.py            # a few minutes on a CPU; writes docs/titok_small_run.{png,json,md}
    python examples/titok_small_run.py --quick    # seconds: the same pipeline at toy size (what CI runs)

Both variants are the same shrunk TiTok (32 px crops of the embedded scikit-image photographs, 8 px
patches, 16 tokens of a 512-code codebook, ViT width 64) trained the same number of steps (400) on the
same 16 training crops (one batch: a memorisation test, what a CPU affords) with the same seed and
optimiser (AdamW 1e-3, cosine, L2 reconstruction loss) on the hf_vq engine (``hf_vq.training.run_training``).
The question it answers is narrow: does the recipe get its tokens to carry image information at all?
They differ where the benchmark's ``configs/imagenet256/vqgan-titok.yaml`` differs from the official
single-stage recipe (``configs/imagenet256/titok-bl64-vq8k-single-stage.yaml``):

* ``benchmark``: the two-stage models' quantizer used for direct pixel regression: 12-dim l2-normalised
  codes; decoder as deep as the encoder (ViT-B / ViT-B);
* ``ours``: the official single-stage quantizer: 64-dim codes without normalisation, CVQ dead-code
  restarts (``dead_code_restarts``); a decoder twice as deep as the encoder (ViT-B / ViT-L).

The training crops and held-out crops (photographs never trained on) are reconstructed and measured:
codebook usage, PSNR, SSIM, two repeated-pattern measures defined below (``patch_period_error_correlation``,
``excess_cell_similarity``) and token diversity. Outputs: a grid (rows: training crops, benchmark setting,
ours; then the same for held-out crops), the metrics as JSON and a markdown table. LPIPS, the ConvNeXt perceptual term and the
GAN are left out: their pretrained weights are not downloadable here, and at this size the GAN
would start at step 0. What a run this small shows is stated in the README; it is not ImageNet.
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("benchmark", "ours")
# The benchmark page's single-stage TiTok-B-64 on ImageNet 256 (docs/benchmark-imagenet256.md).
PAGE_ROW = {"codebook_usage": 1.0, "psnr": 17.8995, "ssim": 0.4022, "lpips": 0.2681, "rfid": 4.6691}


# -- repeated-pattern measures --------------------------------------------------------------
def patch_period_error_correlation(original: torch.Tensor, reconstruction: torch.Tensor, period: int) -> float:
    """Correlation of the reconstruction error with itself shifted by ``period`` pixels (the decoder's
    patch size), horizontally and vertically, averaged. A decoder that stamps the same artifact into
    every ``period`` x ``period`` cell makes errors that repeat at that period: values near 1. An
    error without that structure gives values near the error's ordinary short-range correlation.

    original, reconstruction: (B, C, H, W) in the same range.
    """
    error = (reconstruction - original).double()
    error = error - error.mean(dim=(2, 3), keepdim=True)
    correlations = []
    for a, b in ((error[..., :, :-period], error[..., :, period:]), (error[..., :-period, :], error[..., period:, :])):
        numerator = (a * b).sum(dim=(2, 3))
        denominator = (a.pow(2).sum(dim=(2, 3)) * b.pow(2).sum(dim=(2, 3))).sqrt().clamp_min(1e-12)
        correlations.append((numerator / denominator).mean())
    return float(sum(correlations) / 2)


def cell_similarity(images: torch.Tensor, cell: int) -> float:
    """Mean cosine similarity between the mean-removed contents of different ``cell`` x ``cell`` cells of
    each image (the decoder's patch grid): how alike the cells of one image look."""
    b, c, h, w = images.shape
    cells = images.double().reshape(b, c, h // cell, cell, w // cell, cell).permute(0, 2, 4, 1, 3, 5)
    cells = cells.reshape(b, (h // cell) * (w // cell), c * cell * cell)
    cells = cells - cells.mean(dim=2, keepdim=True)
    cells = cells / cells.norm(dim=2, keepdim=True).clamp_min(1e-12)
    similarity = cells @ cells.transpose(1, 2)
    n = similarity.shape[1]
    off_diagonal = similarity.sum(dim=(1, 2)) - similarity.diagonal(dim1=1, dim2=2).sum(dim=1)
    return float((off_diagonal / (n * (n - 1))).mean())


def excess_cell_similarity(original: torch.Tensor, reconstruction: torch.Tensor, cell: int) -> float:
    """cell_similarity(reconstructions) - cell_similarity(originals): > 0 when the reconstructions'
    cells are more alike than the photographs' (repeated patterns), about 0 when not."""
    return cell_similarity(reconstruction, cell) - cell_similarity(original, cell)


def token_diversity(indices: torch.Tensor) -> dict:
    """indices (B, N): distinct codes per image / N (1 = no code repeated within an image), and the
    mean number of distinct codes a token position takes across images / B."""
    per_image = np.mean([len(torch.unique(row)) / indices.shape[1] for row in indices])
    per_position = np.mean([len(torch.unique(column)) / indices.shape[0] for column in indices.T])
    return {"distinct_codes_per_image": float(per_image), "distinct_codes_per_position": float(per_position)}


# -- the two variants -----------------------------------------------------------------------
def model_section(variant: str, quick: bool) -> dict:
    width = 32 if quick else 64
    shared = {
        "model_type": "titok", "image_size": 32, "num_latent_tokens": 16, "patch_size": 8, "decoder_patch_size": 8,
        "encoder_hidden_size": width, "encoder_num_layers": 1 if quick else 2, "encoder_num_heads": 4,
        "decoder_hidden_size": width, "decoder_num_heads": 4, "codebook_size": 512, "decoder_type": "pixel",
        "legacy_latent_layout": False, "zero_one_pixels": False, "reconstruction_loss": "mse",
    }
    if variant == "benchmark":
        return {**shared, "decoder_num_layers": 1 if quick else 2, "codebook_dim": 12, "l2_norm": True}
    return {**shared, "decoder_num_layers": 2 if quick else 4, "codebook_dim": 64, "l2_norm": False,
            "dead_code_restarts": True}


def write_crops(folder: Path, split: str, count: int) -> None:
    from hf_vq.data.embedded import embedded_patches

    folder.mkdir(parents=True, exist_ok=True)
    images, _ = embedded_patches(split, count, patch_size=48, seed=0)
    for index, image in enumerate(images):
        image.save(folder / f"{index:05d}.png")


def train_variant(variant: str, data_dir: Path, output_dir: Path, steps: int, quick: bool):
    from hf_vq.training import TrainConfig, run_training

    config = TrainConfig.from_dict({
        "output_dir": str(output_dir / variant), "seed": 0, "model": model_section(variant, quick),
        "data": {"dataset": "imagefolder", "train_data_dir": str(data_dir / "train"),
                 "eval_data_dir": str(data_dir / "eval"), "image_size": 32},
        "loss": {"reconstruction": "mse"},
        "training": {"batch_size": 8 if quick else 16, "max_steps": steps, "learning_rate": 1e-3, "optimizer": "adamw",
                     "adam_beta2": 0.99, "weight_decay": 1e-4, "lr_scheduler": "cosine", "warmup_steps": 0,
                     "max_grad_norm": 1.0, "log_every": max(1, steps // 10), "report_to": "none", "overwrite": True},
        "eval": {"batch_size": 64, "num_grid_images": 8},
    })
    return run_training(config)


def reconstruction_metrics(originals: torch.Tensor, reconstructions: torch.Tensor) -> dict:
    """PSNR and SSIM as hf_vq's evaluation computes them ([0, 1] images, per image, then the mean)."""
    from hf_vq.evaluation.metrics import psnr, ssim

    a, b = originals * 0.5 + 0.5, reconstructions * 0.5 + 0.5
    return {"psnr": float(psnr(b, a).mean()), "ssim": float(ssim(b, a).mean())}


@torch.no_grad()
def measure(model, originals: torch.Tensor, metrics: dict) -> tuple[dict, torch.Tensor]:
    model.eval()
    encoded = model.encode(originals)
    reconstructions = model.decode(encoded.quantized).sample.clamp(-1, 1)
    cell = model.config.decoder_patch_size
    row = {key: metrics[key] for key in ("codebook_usage", "psnr", "ssim") if key in metrics}
    row["patch_period_error_correlation"] = patch_period_error_correlation(originals, reconstructions, cell)
    row["excess_cell_similarity"] = excess_cell_similarity(originals, reconstructions, cell)
    row.update(token_diversity(encoded.indices))
    return row, reconstructions


def load_eval_images(folder: Path, count: int) -> torch.Tensor:
    from PIL import Image

    from hf_vq.processing.image_processing_vq import center_crop_arr

    files = sorted(folder.glob("*.png"))[:count]
    arrays = [center_crop_arr(Image.open(path).convert("RGB"), 32) for path in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def markdown(rows: dict, steps: int) -> str:
    """One line per (variant, image set)."""
    columns = ("codebook_usage", "psnr", "ssim", "patch_period_error_correlation", "excess_cell_similarity",
               "distinct_codes_per_image", "distinct_codes_per_position")
    lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4f}" if c in row else "-" for c in columns) + " |")
    lines.append(f"| benchmark page (ImageNet 256, TiTok-B-64, 1M steps) | {PAGE_ROW['codebook_usage']:.4f} | "
                 f"{PAGE_ROW['psnr']:.4f} | {PAGE_ROW['ssim']:.4f} | - | - | - | - |")
    return f"Small run: {steps} steps per variant on 16 training crops (32 px, embedded photographs).\n\n" + "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy size and a few steps (seconds; what CI runs)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per variant (default 400; --quick 3)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where the grid, metrics and table go (default docs/; --quick: a temporary folder)")
    args = parser.parse_args(argv)
    steps = args.steps or (3 if args.quick else 400)
    output_dir = args.output_dir or (Path(tempfile.mkdtemp(prefix="titok_small_run_")) if args.quick else REPO / "docs")
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        num_train = 8 if args.quick else 16
        write_crops(data_dir / "train", "train", num_train)
        write_crops(data_dir / "eval", "validation", 16 if args.quick else 256)
        held_out = load_eval_images(data_dir / "eval", 16 if args.quick else 256)
        trained_on = load_eval_images(data_dir / "train", num_train)
        rows, grids = {}, [held_out[:8]]
        train_grids = [trained_on[:8]]
        for variant in VARIANTS:
            from accelerate.state import AcceleratorState

            AcceleratorState._reset_state(reset_partial_state=True)  # one engine run after the other in a process
            result = train_variant(variant, data_dir, Path(scratch) / "runs", steps, args.quick)
            rows[f"{variant}, held-out crops"], reconstructions = measure(result.model, held_out, result.metrics)
            grids.append(reconstructions[:8])
            train_row, train_reconstructions = measure(result.model, trained_on, {})
            train_row.update(reconstruction_metrics(trained_on, train_reconstructions))
            rows[f"{variant}, training crops"] = train_row
            train_grids.append(train_reconstructions[:8])
        grids = train_grids + grids
    from torchvision.utils import save_image

    save_image(torch.cat(grids) * 0.5 + 0.5, output_dir / "titok_small_run.png", nrow=8, padding=1)
    report = {"steps": steps, "quick": args.quick, "variants": {v: model_section(v, args.quick) for v in VARIANTS},
              "metrics": rows, "benchmark_page_row": PAGE_ROW}
    (output_dir / "titok_small_run.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "titok_small_run.md").write_text(markdown(rows, steps))
    print(markdown(rows, steps))
    print(f"Wrote {output_dir / 'titok_small_run.png'} (rows: training crops, benchmark setting, ours, then the same "
          "for held-out crops), "
          f"{output_dir / 'titok_small_run.json'}, {output_dir / 'titok_small_run.md'}")
    return report


if __name__ == "__main__":
    main()
