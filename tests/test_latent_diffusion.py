"""hf_vq tokenizers plug into diffusers' latent diffusion pipeline (decode(latents).sample, scaling_factor)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel, LDMPipeline, UNet2DModel

import hf_vq

REPO = Path(__file__).resolve().parents[1]


def tiny_parts():
    torch.manual_seed(0)
    tokenizer = hf_vq.VQVAEModel(
        hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=4, image_size=16, scaling_factor=0.5)
    ).eval()
    unet = UNet2DModel(
        sample_size=4, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    ).eval()
    return tokenizer, unet


def ddim_then_decode_by_hand(predict_noise, tokenizer, scaling_factor):
    """The pipelines' sampling written out: 3 DDIM steps (eta 0) from seed-3 noise of shape (2, 4, 4, 4),
    then decode(latents / scaling_factor), as (2, H, W, 3) images in [0, 1]."""
    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(3)
    latents = torch.randn((2, 4, 4, 4), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for t in scheduler.timesteps:
            latents = scheduler.step(predict_noise(latents, t), t, latents, eta=0.0).prev_sample
        images = tokenizer.decode(latents / scaling_factor).sample
    return ((images / 2 + 0.5).clamp(0, 1)).permute(0, 2, 3, 1).numpy()


def test_ldm_pipeline_decodes_with_the_tokenizer_and_its_scaling_factor():
    tokenizer, unet = tiny_parts()
    pipeline = LDMPipeline(vqvae=tokenizer, unet=unet, scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline(batch_size=2, generator=torch.Generator().manual_seed(3), num_inference_steps=3, output_type="np").images
    assert images.shape == (2, 16, 16, 3)

    # the same sampling by hand: DDIM steps, then decode(latents / scaling_factor)
    expected = ddim_then_decode_by_hand(lambda latents, t: unet(latents, t).sample, tokenizer, scaling_factor=0.5)
    np.testing.assert_allclose(images, expected, atol=1e-5)


def tiny_vqgan_lc():
    """A tiny VQGAN-LC (frozen random 'teacher' codebook + projector): latents (B, 4, 4, 4) at 16 px."""
    torch.manual_seed(0)
    config = hf_vq.VQGANLCConfig(image_size=16, base_channels=32, channel_multipliers=[1, 1, 1], num_res_blocks=1,
                                 attn_resolutions=[], z_channels=32, codebook_dim=4, codebook_size=64,
                                 codebook_feature_dim=12, scaling_factor=0.7)
    return hf_vq.VQGANLCModel.from_codebook(config, torch.randn(64, 12)).eval()


def test_dit_pipeline_decodes_with_a_frozen_vqgan_lc_and_guides_with_the_null_class():
    tokenizer = tiny_vqgan_lc()
    torch.manual_seed(1)
    dit = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, num_layers=1,
                                sample_size=4, patch_size=1, num_embeds_ada_norm=1000).eval()
    with torch.no_grad():  # adaLN-Zero starts at zero output: give the blocks weights so guidance shows
        for parameter in dit.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    pipeline = DiTPipeline(transformer=dit, vae=tokenizer, scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipeline.set_progress_bar_config(disable=True)
    images = pipeline(class_labels=[1, 2], guidance_scale=3.0, generator=torch.Generator().manual_seed(3),
                      num_inference_steps=3, output_type="np").images
    assert images.shape == (2, 16, 16, 3)

    # by hand: DDIM steps on uncond + 3 * (cond - uncond), the null class being label 1000, then decode(latents / 0.7)
    def guided_noise(latents, t):
        steps = torch.full((2,), int(t))
        cond = dit(latents, timestep=steps, class_labels=torch.tensor([1, 2])).sample
        uncond = dit(latents, timestep=steps, class_labels=torch.tensor([1000, 1000])).sample
        return uncond + 3.0 * (cond - uncond)

    expected = ddim_then_decode_by_hand(guided_noise, tokenizer, scaling_factor=0.7)
    np.testing.assert_allclose(images, expected, atol=1e-5)
    assert not np.allclose(images[0], images[1], atol=1e-3)  # different classes, different samples


@pytest.mark.parametrize("backbone", ["unet", "dit"])
def test_latent_diffusion_example_quick_run_makes_images_that_mean_something(backbone, tmp_path):
    """The example's --quick form: a trained tokenizer (better than the mean image), a denoiser whose loss
    fell, and samples that are neither constant nor all alike; nothing written outside --output-dir."""
    import json

    from PIL import Image

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    output = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "latent_diffusion.py"), "--quick", "--backbone", backbone,
         "--output-dir", str(output)],
        capture_output=True, text=True, timeout=600, cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(cwd.iterdir()) == []
    assert (output / backbone).is_dir() and (output / "reconstructions.png").is_file()
    metrics = json.loads((output / "metrics.json").read_text())
    assert all(np.isfinite(value) for value in metrics.values())
    assert metrics["tokenizer_psnr"] > metrics["mean_image_psnr"] + 1.0
    assert metrics[f"{backbone}_loss_last"] < 0.5 * metrics[f"{backbone}_loss_first"]
    samples = np.asarray(Image.open(output / "samples.png"), dtype=np.float64)
    assert samples.shape == (2 * 16, 4 * 16, 3)  # 8 samples of 16 px in a 4-column grid
    tiles = samples.reshape(2, 16, 4, 16, 3).transpose(0, 2, 1, 3, 4).reshape(8, 16, 16, 3)
    assert tiles.std() > 10  # not a flat image
    assert tiles.std(0).mean() > 3  # the samples differ from one another
    assert abs(metrics["samples_pixel_std"] - tiles.std()) < 1e-6
