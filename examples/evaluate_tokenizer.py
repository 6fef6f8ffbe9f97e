"""Evaluate a tokenizer on the embedded validation images and print its benchmark row.

    python examples/evaluate_tokenizer.py [MODEL_DIR]

Without MODEL_DIR a small random VQ-VAE is saved to outputs/example-random-vqvae first
(train one with `hf-vq train` for meaningful numbers). LPIPS and rFID run when their
weights are on disk (torch's hub cache, see the messages); otherwise they are skipped and
the other metrics still run.
"""

import sys
from pathlib import Path

import torch

import hf_vq
from hf_vq.evaluation import evaluate_model_dir


def random_tokenizer(path: Path) -> Path:
    torch.manual_seed(0)
    config = hf_vq.VQVAEConfig(hidden_dim=32, codebook_size=64, codebook_dim=8, image_size=32)
    hf_vq.VQVAEModel(config).save_pretrained(path)
    hf_vq.VQImageProcessor(size=32).save_pretrained(path)
    return path


def main() -> None:
    model_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else random_tokenizer(Path("outputs/example-random-vqvae"))
    results = evaluate_model_dir(
        model_dir,
        data="embedded",  # or an image folder, or a Hub dataset name
        split="validation",
        metrics=("usage", "psnr", "ssim", "lpips", "rfid"),
        output=model_dir / "eval_metrics.json",
        batch_size=64,
    )
    print(results["benchmark_row"])
    print(f"perplexity {results['perplexity']:.2f} over {results['num_images']} images ({results['eval_data']})")
    if results.get("skipped_metrics"):
        print("skipped (weights missing, see above):", ", ".join(results["skipped_metrics"]))


if __name__ == "__main__":
    main()
