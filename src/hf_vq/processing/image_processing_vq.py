"""VQImageProcessor: images -> pixel_values in [-1, 1] at the model's resolution, and back.

Preprocessing is the ADM center crop used by every benchmark of this project (BOX
downsampling while the image is at least twice the target, then BICUBIC resize of the
short side, then a center crop), followed by ``x / 127.5 - 1``.
"""

from typing import List, Union

import numpy as np
import torch
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

OUTPUT_TYPES = ("pil", "np", "pt")


def center_crop_arr(pil_image: Image.Image, image_size: int) -> np.ndarray:
    """ADM (guided-diffusion) center crop: returns a uint8 (image_size, image_size, C) array."""
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y : crop_y + image_size, crop_x : crop_x + image_size]


def _to_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, torch.Tensor):
        raise ValueError(
            "VQImageProcessor takes PIL images or uint8 numpy arrays (H, W, C); got a torch.Tensor. "
            "Tensors already in [-1, 1] can go to the model directly."
        )
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(
                f"numpy images must be uint8 (H, W) or (H, W, C) in 0-255; got dtype {image.dtype}. "
                "Use (x * 255).round().astype(np.uint8) for [0, 1] floats."
            )
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4)):
            raise ValueError(f"numpy images must be (H, W) or (H, W, C) with C in 1/3/4; got shape {image.shape}.")
        return Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image)
    raise ValueError(f"Unsupported image type {type(image).__name__}; pass PIL images or uint8 numpy arrays.")


class VQImageProcessor(BaseImageProcessor):
    """Center-crop + [-1, 1] scaling for hf_vq tokenizers, saved beside the model.

    Args:
        size: output resolution (square).
        num_channels: 3 converts to RGB, 1 to grayscale ("L").
        do_center_crop: ADM center crop (True) or a plain resize to ``size`` x ``size``.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, size: int = 256, num_channels: int = 3, do_center_crop: bool = True, **kwargs):
        super().__init__(**kwargs)
        if num_channels not in (1, 3):
            raise ValueError(f"num_channels must be 1 or 3; got {num_channels}.")
        self.size = int(size)
        self.num_channels = num_channels
        self.do_center_crop = do_center_crop

    def __call__(self, images, return_tensors: str = "pt", **kwargs) -> BatchFeature:
        return self.preprocess(images, return_tensors=return_tensors, **kwargs)

    def preprocess(self, images, size: int = None, return_tensors: str = "pt") -> BatchFeature:
        size = size or self.size
        if not isinstance(images, (list, tuple)):
            images = [images]
        mode = "RGB" if self.num_channels == 3 else "L"
        arrays = []
        for image in images:
            pil = _to_pil(image).convert(mode)
            if self.do_center_crop:
                arr = center_crop_arr(pil, size)
            else:
                arr = np.array(pil.resize((size, size), resample=Image.BICUBIC))
            arrays.append(arr.reshape(size, size, self.num_channels))
        batch = np.stack(arrays).astype(np.float32) / 127.5 - 1.0
        batch = batch.transpose(0, 3, 1, 2)
        return BatchFeature(data={"pixel_values": batch}, tensor_type=return_tensors)

    def postprocess(
        self, images: torch.Tensor, output_type: str = "pil"
    ) -> Union[List[Image.Image], np.ndarray, torch.Tensor]:
        """Model outputs (B, C, H, W) in [-1, 1] -> PIL list, uint8 numpy (B, H, W, C) or float tensor in [0, 1].

        Values are clamped to [-1, 1] first (the metrics protocol of the benchmarks).
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"Unknown output_type {output_type!r}; choose one of {OUTPUT_TYPES}.")
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            got = getattr(images, "shape", type(images))
            raise ValueError(f"postprocess expects a (batch, channels, height, width) tensor; got {got}.")
        unit = (images.detach().float().clamp(-1, 1) + 1) / 2
        if output_type == "pt":
            return unit
        arr = (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        if output_type == "np":
            return arr
        return [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in arr]
