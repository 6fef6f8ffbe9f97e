"""Latent diffusion on an hf_vq tokenizer's latents with a tiny diffusers UNet2DModel or DiT.

    python examples/latent_diffusion.py [--quick] [--backbone unet|dit] [--tokenizer DIR --images FOLDER] [--output-dir DIR]

1. Encode images: ``latents = tokenizer.encode(x).quantized * tokenizer.config.scaling_factor``.
2. Train a denoiser to predict the noise that DDPMScheduler adds to those latents:
   ``--backbone unet`` (default) an unconditional ``UNet2DModel``; ``--backbone dit`` a
   class-conditional ``DiTTransformer2DModel`` (adaLN-Zero, its own 10% label dropout for
   classifier-free guidance), the DiT-LC setting of VQGAN-LC (a frozen tokenizer, e.g.
   ``--tokenizer`` a converted or trained VQGAN-LC).
3. Sample with diffusers' pipelines and DDIM: ``LDMPipeline(vqvae=tokenizer, unet=unet, ...)`` or
   ``DiTPipeline(transformer=dit, vae=tokenizer, ...)`` with guidance; both decode with
   ``tokenizer.decode(latents / config.scaling_factor).sample``, the interface every hf_vq
   tokenizer exposes.

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
diffusion loss at the start and the end, the samples' pixel spread) and the denoiser in ``unet/`` or ``dit/``.
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DiTPipeline, DiTTransformer2DModel, LDMPipeline, UNet2DModel
from tqdm.auto import tqdm
from transformers import AutoModel

import hf_vq
from hf_vq.evaluation import make_grid, psnr, save_reconstruction_grid

# (tokenizer steps, denoiser steps, DDIM steps, samples): the defaults and --quick.
SCHEDULES = {"default": (300, 600, 50, 16), "quick": (150, 150, 20, 8)}
# DiTPipeline draws the null (unconditional) class as label 1000, so the DiT keeps ImageNet's 1000 label slots.
DIT_NUM_LABELS = 1000


def synthetic_images(count: int, size: int, seed: int = 0, return_labels: bool = False):
    """(count, 3, size, size) in [-1, 1]: one coloured disc per image on a vertical gradient.

    With ``return_labels`` also the class of each image: the disc colour's strongest channel (0 red, 1 green, 2 blue).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images, labels = [], []
    for _ in range(count):
        background = np.stack([yy * rng.uniform(0, 1) for _ in range(3)], axis=0)
        cy, cx, radius = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
        color = rng.uniform(0, 1, size=3)[:, None, None]
        images.append(np.where(disc[None], color, background))
        labels.append(int(color.argmax()))
    images = torch.tensor(np.stack(images), dtype=torch.float32) * 2 - 1
    return (images, torch.tensor(labels)) if return_labels else images


def folder_images(path: str, size: int, return_labels: bool = False):
    """The images of an imagefolder, center-cropped; with ``return_labels`` also its labels (sub-folders; 0 without)."""
    from datasets import load_dataset

    from hf_vq.processing.image_processing_vq import center_crop_arr

    if not Path(path).is_dir():
        raise SystemExit(f"--images {path}: no such folder. Pass a folder of images.")
    dataset = load_dataset("imagefolder", data_dir=path, split="train")
    arrays = [center_crop_arr(image.convert("RGB"), size) for image in dataset["image"]]
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1
    if not return_labels:
        return images
    labels = dataset["label"] if "label" in dataset.column_names else [0] * len(dataset)
    return images, torch.tensor(labels)


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


def train_denoiser(model, latents, labels, steps: int, batch_size: int, noise_scheduler) -> list:
    """Noise prediction on DDPM's forward process; ``labels`` (None: unconditional) go to the model as class_labels."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    progress = tqdm(range(steps), desc=f"Training the {type(model).__name__}")
    model.train()
    for _ in progress:
        picked = torch.randint(0, len(latents), (batch_size,), device=latents.device)
        clean = latents[picked]
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(clean),), device=clean.device)
        noisy = noise_scheduler.add_noise(clean, noise, timesteps)
        if labels is None:
            prediction = model(noisy, timesteps).sample
        else:
            prediction = model(noisy, timestep=timesteps, class_labels=labels[picked]).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        progress.set_postfix(loss=f"{loss.item():.4f}")
    return losses


def tiny_dit(channels: int, latent_size: int) -> DiTTransformer2DModel:
    """A 2-block DiT (adaLN-Zero); patch 1 on latent grids under 8, else 2 as DiT."""
    return DiTTransformer2DModel(
        num_attention_heads=4, attention_head_dim=16, in_channels=channels, out_channels=channels, num_layers=2,
        sample_size=latent_size, patch_size=1 if latent_size < 8 else 2, num_embeds_ada_norm=DIT_NUM_LABELS,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", help="hf_vq tokenizer folder (default: train a tiny FSQ-VAE on the images).")
    parser.add_argument("--images", help="imagefolder directory (default: synthetic images).")
    parser.add_argument("--backbone", choices=["unet", "dit"], default="unet",
                        help="unet: unconditional UNet2DModel + LDMPipeline; dit: class-conditional DiTTransformer2DModel + DiTPipeline.")
    parser.add_argument("--guidance-scale", type=float, default=1.5, help="DiT's classifier-free guidance (> 1 to use it).")
    parser.add_argument("--quick", action="store_true", help="Fewer steps (what the test runs).")
    parser.add_argument("--tokenizer-steps", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="Denoiser training steps.")
    parser.add_argument("--inference-steps", type=int, default=None, help="DDIM steps.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--output-dir", default="outputs/latent_diffusion")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tokenizer_steps, denoiser_steps, inference_steps, num_samples = SCHEDULES["quick" if args.quick else "default"]
    tokenizer_steps = args.tokenizer_steps or tokenizer_steps
    denoiser_steps, inference_steps = args.steps or denoiser_steps, args.inference_steps or inference_steps
    num_samples = args.num_samples or num_samples
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    metrics = {}

    def load_images(size):
        if args.images:
            return folder_images(args.images, size, return_labels=True)
        return synthetic_images(512, size, args.seed, return_labels=True)

    if args.tokenizer:
        tokenizer = AutoModel.from_pretrained(args.tokenizer).to(device).eval()
        images, labels = load_images(tokenizer.config.image_size)
    else:
        images, labels = load_images(16)
        tokenizer = train_tiny_tokenizer(images, tokenizer_steps, device, args.seed)
    tokenizer.requires_grad_(False)  # frozen: only the denoiser trains
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

    # 2. A tiny denoiser predicting the noise of DDPM's forward process.
    noise_scheduler = DDPMScheduler(num_train_timesteps=1000)
    if args.backbone == "unet":
        denoiser = UNet2DModel(
            sample_size=latent_size, in_channels=channels, out_channels=channels, layers_per_block=1,
            block_out_channels=(32, 64), down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
        ).to(device)
        losses = train_denoiser(denoiser, latents, None, denoiser_steps, args.batch_size, noise_scheduler)
    else:
        if int(labels.max()) >= DIT_NUM_LABELS:
            raise SystemExit(f"--images has {int(labels.max()) + 1} classes; the DiT here takes at most {DIT_NUM_LABELS}.")
        denoiser = tiny_dit(channels, latent_size).to(device)
        losses = train_denoiser(denoiser, latents, labels.to(device), denoiser_steps, args.batch_size, noise_scheduler)
    window = max(1, min(20, len(losses) // 4))
    metrics[f"{args.backbone}_loss_first"] = float(np.mean(losses[:window]))
    metrics[f"{args.backbone}_loss_last"] = float(np.mean(losses[-window:]))

    # 3. Sample with diffusers' pipelines (DDIM over the same noise schedule); both decode with
    #    tokenizer.decode(latents / tokenizer.config.scaling_factor).sample.
    denoiser.eval()
    scheduler = DDIMScheduler.from_config(noise_scheduler.config)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    if args.backbone == "unet":
        pipeline = LDMPipeline(vqvae=tokenizer, unet=denoiser, scheduler=scheduler)
        pipeline.set_progress_bar_config(desc="Sampling")
        samples = pipeline(batch_size=num_samples, generator=generator, num_inference_steps=inference_steps,
                           output_type="np").images
    else:
        pipeline = DiTPipeline(transformer=denoiser, vae=tokenizer, scheduler=scheduler)
        pipeline.set_progress_bar_config(desc="Sampling")
        classes = sorted(set(labels.tolist()))
        sample_labels = [classes[i % len(classes)] for i in range(num_samples)]
        samples = pipeline(class_labels=sample_labels, guidance_scale=args.guidance_scale, generator=generator,
                           num_inference_steps=inference_steps, output_type="np").images
    samples = (samples * 255).round().astype(np.uint8)
    make_grid(samples, num_columns=4).save(output_dir / "samples.png")
    denoiser.save_pretrained(output_dir / args.backbone)
    metrics["samples_pixel_std"] = float(samples.std())
    metrics["samples_spread_across_images"] = float(samples.astype(np.float64).std(0).mean())
    metrics["seconds"] = round(time.time() - start, 1)
    if not all(math.isfinite(value) for value in metrics.values()):
        raise SystemExit(f"Non-finite metrics: {metrics}")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    print(f"Saved {output_dir / 'samples.png'}, {output_dir / 'reconstructions.png'}, "
          f"{output_dir / 'metrics.json'} and the {args.backbone} in {output_dir / args.backbone}")
    return metrics


if __name__ == "__main__":
    main()
