"""From sampled tokens to images: the Python API behind ``hf-vq generate`` and gFID sampling."""

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..utils.images import make_grid, to_uint8
from .sampling import DEFAULT_GUIDANCE_SCALE, generate


def tokens_to_indices(tokenizer, tokens: torch.LongTensor) -> torch.LongTensor:
    """(B, N) GPT tokens -> the tokenizer's index layout: (B, h, w) square grids, (B, N) for 1D tokenizers."""
    if getattr(tokenizer, "indices_ndim", 3) == 2:
        return tokens
    side = math.isqrt(tokens.shape[1])
    if side * side != tokens.shape[1]:
        raise ValueError(f"{tokens.shape[1]} tokens do not make a square grid for a 2D tokenizer.")
    return tokens.view(tokens.shape[0], side, side)


def check_compatible(transformer, tokenizer) -> None:
    if transformer.config.vocab_size != tokenizer.config.codebook_size:
        raise ValueError(
            f"The GPT predicts {transformer.config.vocab_size} codes but the tokenizer has "
            f"{tokenizer.config.codebook_size}: they were not trained together."
        )


@torch.no_grad()
def generate_images(
    transformer,
    tokenizer,
    class_labels: torch.Tensor | Sequence[int],
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
    cfg_interval: int = -1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    progress_bar=False,
) -> torch.FloatTensor:
    """Images (B, C, H, W) in [-1, 1] for ``class_labels``: sample tokens, then ``tokenizer.decode_indices``."""
    check_compatible(transformer, tokenizer)
    tokens = generate(
        transformer, class_labels, guidance_scale=guidance_scale, cfg_interval=cfg_interval,
        temperature=temperature, top_k=top_k, top_p=top_p, generator=generator, progress_bar=progress_bar,
    )
    indices = tokens_to_indices(tokenizer, tokens).to(tokenizer.device)
    return tokenizer.decode_indices(indices).sample.clamp(-1, 1)


def generate_samples(
    transformer,
    tokenizer,
    num_samples: int,
    output_dir: str | os.PathLike | None = None,
    class_labels: Sequence[int] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    progress_bar: bool = True,
    **sampling_kwargs,
) -> np.ndarray:
    """``num_samples`` images as (N, H, W, C) uint8, also written to ``output_dir`` as PNGs when given.

    The samples for gFID: without ``class_labels`` the classes cycle 0, 1, ..., num_classes - 1
    (an equal number per class for N a multiple of the class count, as ImageNet val's 50 per class);
    otherwise ``class_labels`` lists one label per sample. The files are named
    ``{index:06d}_class{label}.png``. ``sampling_kwargs`` go to :func:`generate_images`.
    Score them with ``hf_vq.evaluation.compute_gfid``.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1; got {num_samples} and {batch_size}.")
    if class_labels is None:
        labels = [index % transformer.config.num_classes for index in range(num_samples)]
    else:
        labels = list(class_labels)
        if len(labels) != num_samples:
            raise ValueError(f"class_labels has {len(labels)} labels for num_samples {num_samples}: give one per sample.")
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
    generator = torch.Generator(device=transformer.device).manual_seed(seed)
    samples = []
    for start in tqdm(range(0, num_samples, batch_size), desc="Generating samples", disable=not progress_bar):
        batch_labels = labels[start : start + batch_size]
        images = to_uint8(generate_images(transformer, tokenizer, batch_labels, generator=generator, **sampling_kwargs))
        if output_dir is not None:
            for offset, (image, label) in enumerate(zip(images, batch_labels)):
                Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
                    os.path.join(output_dir, f"{start + offset:06d}_class{label}.png")
                )
        samples.append(images)
    return np.concatenate(samples)


__all__ = ["generate_images", "generate_samples", "make_grid", "to_uint8", "tokens_to_indices"]
