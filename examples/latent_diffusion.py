"""Latent diffusion on an hf_vq tokenizer's latents with a tiny diffusers UNet2DModel.

    python examples/latent_diffusion.py [--tokenizer DIR] [--steps 300] [--output-dir latent_diffusion_out]

1. Encode images: ``latents = tokenizer.encode(x).quantized * tokenizer.config.scaling_factor``.
2. Train a UNet2DModel to predict the noise that DDPMScheduler adds to those latents.
3. Sample with diffusers' ``LDMPipeline(vqvae=tokenizer, unet=unet, scheduler=DDIMScheduler)``
   (50 DDIM steps): it decodes with ``tokenizer.decode(latents / config.scaling_factor).sample``,
   the interface every hf_vq tokenizer exposes.

Without --tokenizer a fresh tiny VQ-VAE is used and the images are synthetic (coloured
discs on a gradient), so the script runs anywhere in a minute on a CPU; point it at a
trained tokenizer and your own images (--images, an imagefolder) for real results.
"""

import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, LDMPipeline, UNet2DModel
from tqdm.auto import tqdm
from transformers import AutoModel

import hf_vq
from hf_vq.evaluation import make_grid


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

    dataset = load_dataset("imagefolder", data_dir=path, split="train")
    arrays = [center_crop_arr(image.convert("RGB"), size) for image in dataset["image"]]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", help="hf_vq tokenizer folder (default: a fresh tiny VQ-VAE).")
    parser.add_argument("--images", help="imagefolder directory (default: synthetic images).")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--output-dir", default="latent_diffusion_out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    if args.tokenizer:
        tokenizer = AutoModel.from_pretrained(args.tokenizer)
    else:
        tokenizer = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=32, codebook_size=64, codebook_dim=4, image_size=32))
    tokenizer = tokenizer.to(device).eval().requires_grad_(False)
    size = tokenizer.config.image_size
    images = folder_images(args.images, size) if args.images else synthetic_images(256, size, args.seed)

    # 1. The latents the diffusion model learns: quantized codes times the tokenizer's scaling_factor.
    scaling = tokenizer.config.scaling_factor
    with torch.no_grad():
        latents = torch.cat([tokenizer.encode(batch.to(device)).quantized * scaling for batch in images.split(64)])
    channels, latent_size = latents.shape[1], latents.shape[-1]
    print(
        f"{len(latents)} latents of shape {tuple(latents.shape[1:])}, std {latents.std():.3f} with scaling_factor "
        f"{scaling}; a scaling_factor of {scaling / latents.std():.3g} in the tokenizer config would give unit variance"
    )

    # 2. A tiny UNet predicting the noise of DDPM's forward process.
    unet = UNet2DModel(
        sample_size=latent_size, in_channels=channels, out_channels=channels, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    ).to(device)
    noise_scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=3e-4)
    progress = tqdm(range(args.steps), desc="Training UNet")
    for _ in progress:
        clean = latents[torch.randint(0, len(latents), (args.batch_size,), device=device)]
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(clean),), device=device)
        loss = F.mse_loss(unet(noise_scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        progress.set_postfix(loss=f"{loss.item():.4f}")

    # 3. Sample with diffusers' latent diffusion pipeline (DDIM over the same noise schedule);
    #    it decodes with tokenizer.decode(latents / tokenizer.config.scaling_factor).sample.
    unet.eval()
    pipeline = LDMPipeline(vqvae=tokenizer, unet=unet, scheduler=DDIMScheduler.from_config(noise_scheduler.config))
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    images = pipeline(batch_size=args.num_samples, generator=generator, num_inference_steps=50, output_type="np").images

    os.makedirs(args.output_dir, exist_ok=True)
    make_grid((images * 255).round().astype(np.uint8)).save(os.path.join(args.output_dir, "samples.png"))
    unet.save_pretrained(os.path.join(args.output_dir, "unet"))
    print(f"Saved {args.output_dir}/samples.png and the UNet")


if __name__ == "__main__":
    main()
