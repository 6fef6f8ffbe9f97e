"""Reconstruct an evaluation set and report codebook usage, perplexity and image metrics."""

from typing import Iterable

import torch
from tqdm.auto import tqdm

from ..quantizers import CodebookUsage
from .metrics import psnr


@torch.no_grad()
def evaluate_reconstruction(model, batches: Iterable[torch.Tensor], device=None, progress: bool = True) -> dict:
    """Codebook usage and perplexity over the whole set, mean per-image PSNR.

    ``batches`` yields pixel tensors (B, C, H, W) in [-1, 1].
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    usage = CodebookUsage(model.config.codebook_size)
    psnr_values = []
    for pixel_values in tqdm(batches, desc="evaluate", disable=not progress):
        pixel_values = pixel_values.to(device)
        encoded = model.encode(pixel_values)
        reconstruction = model.decode(encoded.quantized).sample
        usage.update(encoded.indices)
        psnr_values.append(psnr(reconstruction, pixel_values).cpu())
    model.train(was_training)
    results = usage.compute(all_reduce=True)
    all_psnr = torch.cat(psnr_values) if psnr_values else torch.zeros(0)
    results["psnr"] = float(all_psnr.mean()) if all_psnr.numel() else float("nan")
    results["num_images"] = int(all_psnr.numel())
    return results
