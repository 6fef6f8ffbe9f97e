"""Latent diffusion on an hf_vq tokenizer's latents with a tiny diffusers UNet2DModel.

    python examples/latent_diffusion.py [--quick] [--tokenizer DIR --images FOLDER] [--output-dir DIR]

1. Encode images: ``latents = tokenizer.encode(x).quantized * tokenizer.config.scaling_factor``.
2. Train a UNet2DModel to predict the noise that DDPMScheduler adds to those latents.
3. Sample with diffusers' ``LDMPipeline(vqvae=tokenizer, unet=unet, scheduler=DDIMScheduler)``
   (DDIM): it decodes with ``tokenizer.decode(latents / config.scaling_factor).sample``,
   the interface every hf_vq tokenizer exposes.

Without --tokenizer the images are synthetic (a coloured disc on a gradient) and a tiny
FSQ-VAE is first trained on them for a few hundred steps (a random decoder would turn any
latent into the same grey image); its ``scaling_factor`` is then set so the latents have
unit variance, as diffusion expects. The defaults take about a minute on a quiet 2-core CPU
(``--quick``: about 15 s, for the test); the time grows with other processes on the
machine. Point --tokenizer at a trained tokenizer and --images at your own images for
real results.

Writes into --output-dir (default ``outputs/latent_diffusion``): ``samples.png`` (the
generated images), ``reconstructions.png`` (synthetic images and the tokenizer's
reconstructions, when it trained one), ``metrics.json`` (the tokenizer's PSNR, the
diffusion loss at the start and the end, the samples' pixel spread) and ``unet/``.
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, LDMPipeline, UNet2DModel
from tqdm.auto import tqdm
from transformers import AutoModel

import hf_vq
from hf_vq.evaluation import make_grid, psnr, save_reconstruction_grid

# (tokenizer steps, UNet steps, DDIM steps, samples): the defaults and --quick.
SCHEDULES = {"default": (300, 600, 50, 16), "quick": (150, 150, 20, 8)}


def synthetic_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """(count, 3, size, size) in [-1, 1]: one coloured disc per image on a vertical gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(count):
        background = np.stack([yy * rng.uniform(0, 1) for _ in range(3)], axis=0)
        cy, cx, radius = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
        color = rng.uniform(0, 1, size=3)[:, None, None]
        images.append(np.where(disc[None], color, background))
    return torch.tensor(np.stack(images), dtype=torch.float32) * 2 - 1


def folder_images(path: str, size: int) -> torch.Tensor:
    from datasets import load_dataset

    from hf_vq.processing.image_processing_vq import center_crop_arr

    if not Path(path).is_dir():
        raise SystemExit(f"--images {path}: no such folder. Pass a folder of images.")
    dataset = load_dataset("imagefolder", data_dir=path, split="train")
    arrays = [center_crop_arr(image.convert("RGB"), size) for image in dataset["image"]]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def train_tiny_tokenizer(images: torch.Tensor, steps: int, device, seed: int):
    """A 16x16 -> 4x4 FSQ-VAE (8x8x8 = 512 codes) trained on ``images`` with its own loss.

    FSQ has no codebook to collapse, so a few hundred steps give a usable decoder.
    """
    torch.manual_seed(seed)
    config = hf_vq.FSQVAEConfig(hidden_dim=64, levels=[8, 8, 8], image_size=images.shape[-1])
    tokenizer = hf_vq.FSQVAEModel(config).to(device).train()
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=2e-3)
    for _ in tqdm(range(steps), desc="Training the tokenizer"):
        batch = images[torch.randint(0, len(images), (32,))].to(device)
        loss = tokenizer(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return tokenizer.eval()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", help="hf_vq tokenizer folder (default: train a tiny FSQ-VAE on the images).")
    parser.add_argument("--images", help="imagefolder directory (default: synthetic images).")
    parser.add_argument("--quick", action="store_true", help="Fewer steps (what the test runs).")
    parser.add_argument("--tokenizer-steps", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="UNet training steps.")
    parser.add_argument("--inference-steps", type=int, default=None, help="DDIM steps.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--output-dir", default="outputs/latent_diffusion")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tokenizer_steps, unet_steps, inference_steps, num_samples = SCHEDULES["quick" if args.quick else "default"]
    tokenizer_steps = args.tokenizer_steps or tokenizer_steps
    unet_steps, inference_steps = args.steps or unet_steps, args.inference_steps or inference_steps
    num_samples = args.num_samples or num_samples
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    metrics = {}

    if args.tokenizer:
        tokenizer = AutoModel.from_pretrained(args.tokenizer).to(device).eval()
        size = tokenizer.config.image_size
        images = folder_images(args.images, size) if args.images else synthetic_images(512, size, args.seed)
    else:
        images = folder_images(args.images, 16) if args.images else synthetic_images(512, 16, args.seed)
        tokenizer = train_tiny_tokenizer(images, tokenizer_steps, device, args.seed)
    tokenizer.requires_grad_(False)
    with torch.no_grad():
        shown = images[:16].to(device)
        reconstructions = tokenizer(shown).reconstruction
        metrics["tokenizer_psnr"] = float(psnr(reconstructions, shown).mean())
        # what PSNR a constant (the mean image) would reach: the tokenizer must do better
        metrics["mean_image_psnr"] = float(psnr(images.mean(0, keepdim=True).expand_as(shown).to(device), shown).mean())
    save_reconstruction_grid(shown.cpu(), reconstructions.cpu(), output_dir / "reconstructions.png")

    # 1. The latents the diffusion model learns: quantized codes times the tokenizer's scaling_factor
    #    (set here, for a tokenizer trained by this script, so that the latents have unit variance).
    with torch.no_grad():
        latents = torch.cat([tokenizer.encode(batch.to(device)).quantized for batch in images.split(64)])
    if not args.tokenizer:
        tokenizer.config.scaling_factor = float(1 / latents.std())
    scaling = tokenizer.config.scaling_factor
    latents = latents * scaling
    channels, latent_size = latents.shape[1], latents.shape[-1]
    print(f"{len(latents)} latents of shape {tuple(latents.shape[1:])}, std {latents.std():.3f} "
          f"(scaling_factor {scaling:.3g}); tokenizer PSNR {metrics['tokenizer_psnr']:.2f} dB")

    # 2. A tiny UNet predicting the noise of DDPM's forward process.
    unet = UNet2DModel(
        sample_size=latent_size, in_channels=channels, out_channels=channels, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    ).to(device)
    noise_scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    losses = []
    progress = tqdm(range(unet_steps), desc="Training the UNet")
    for _ in progress:
        clean = latents[torch.randint(0, len(latents), (args.batch_size,), device=device)]
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(clean),), device=device)
        loss = F.mse_loss(unet(noise_scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        progress.set_postfix(loss=f"{loss.item():.4f}")
    window = max(1, min(20, len(losses) // 4))
    metrics["unet_loss_first"] = float(np.mean(losses[:window]))
    metrics["unet_loss_last"] = float(np.mean(losses[-window:]))

    # 3. Sample with diffusers' latent diffusion pipeline (DDIM over the same noise schedule);
    #    it decodes with tokenizer.decode(latents / tokenizer.config.scaling_factor).sample.
    unet.eval()
    pipeline = LDMPipeline(vqvae=tokenizer, unet=unet, scheduler=DDIMScheduler.from_config(noise_scheduler.config))
    pipeline.set_progress_bar_config(desc="Sampling")
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    samples = pipeline(batch_size=num_samples, generator=generator, num_inference_steps=inference_steps,
                       output_type="np").images
    samples = (samples * 255).round().astype(np.uint8)
    make_grid(samples, num_columns=4).save(output_dir / "samples.png")
    unet.save_pretrained(output_dir / "unet")
    metrics["samples_pixel_std"] = float(samples.std())
    metrics["samples_spread_across_images"] = float(samples.astype(np.float64).std(0).mean())
    metrics["seconds"] = round(time.time() - start, 1)
    if not all(math.isfinite(value) for value in metrics.values()):
        raise SystemExit(f"Non-finite metrics: {metrics}")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    print(f"Saved {output_dir / 'samples.png'}, {output_dir / 'reconstructions.png'}, "
          f"{output_dir / 'metrics.json'} and the UNet in {output_dir / 'unet'}")
    return metrics


if __name__ == "__main__":
    main()
