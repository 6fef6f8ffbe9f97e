"""Image datasets -> datasets of tokenizer indices (the input of autoregressive training).

Like LlamaGen's code extraction: images are center-cropped (ADM crop) to the tokenizer's
resolution and encoded; ``augment="flip"`` adds the mirrored image, ``augment="ten_crop"``
crops 10 views (4 corners + center, and their mirrors) of the image resized to 1.1x.
Each view becomes one row ``{"input_ids": [N tokens], "class_labels": int}``.
"""

import numpy as np
import torch
from datasets import Dataset
from PIL import Image
from torchvision.transforms import functional as TF

from ..processing.image_processing_vq import center_crop_arr

AUGMENTATIONS = ("none", "flip", "ten_crop")
# LlamaGen's ten-crop extraction crops image_size views from the image resized to 1.1x.
TEN_CROP_SCALE = 1.1


def augmented_views(image: Image.Image, image_size: int, augment: str) -> list:
    """The views of one image as (H, W, C) uint8 arrays of side ``image_size``."""
    if augment not in AUGMENTATIONS:
        raise ValueError(f"Unknown augment {augment!r}; choose one of {AUGMENTATIONS}.")
    image = image.convert("RGB")
    if augment == "ten_crop":
        enlarged = Image.fromarray(center_crop_arr(image, int(image_size * TEN_CROP_SCALE)))
        return [np.asarray(view) for view in TF.ten_crop(enlarged, image_size)]
    view = center_crop_arr(image, image_size)
    return [view, view[:, ::-1].copy()] if augment == "flip" else [view]


@torch.no_grad()
def encode_views(tokenizer, views: list) -> torch.LongTensor:
    """(V, H, W, C) uint8 views -> (V, N) flattened indices."""
    pixels = torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).float() / 127.5 - 1
    indices = tokenizer.encode(pixels.to(tokenizer.device, tokenizer.dtype)).indices
    return indices.flatten(1).cpu()


def tokenize_dataset(
    tokenizer,
    dataset: Dataset,
    image_column: str = "image",
    label_column: str = "label",
    augment: str = "none",
    batch_size: int = 32,
    num_proc: int | None = None,
) -> Dataset:
    """Encode every image of ``dataset`` with ``tokenizer`` into ``{"input_ids", "class_labels"}`` rows.

    ``num_proc`` > 1 encodes shards in parallel worker processes (CPU tokenizers).
    """
    for column in (image_column, label_column):
        if column not in dataset.column_names:
            raise ValueError(f"Column {column!r} is not in the dataset (columns: {dataset.column_names}).")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"Unknown augment {augment!r}; choose one of {AUGMENTATIONS}.")
    tokenizer.eval()
    image_size = tokenizer.config.image_size

    def encode_batch(batch):
        views, class_labels = [], []
        for image, label in zip(batch[image_column], batch[label_column]):
            image_views = augmented_views(image, image_size, augment)
            views.extend(image_views)
            class_labels.extend([int(label)] * len(image_views))
        # One forward pass for every view of the batch.
        return {"input_ids": encode_views(tokenizer, views).tolist(), "class_labels": class_labels}

    return dataset.map(
        encode_batch, batched=True, batch_size=batch_size, num_proc=num_proc,
        remove_columns=dataset.column_names, desc="Tokenizing images",
    )


__all__ = ["AUGMENTATIONS", "augmented_views", "tokenize_dataset"]
