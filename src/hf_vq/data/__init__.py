"""Data: the embedded default dataset, image datasets and the benchmark transforms."""

from .datasets import (
    DecodedImageDataset,
    DecodedImageIterable,
    EpochShuffleSampler,
    collate_images,
    load_image_dataset,
)
from .embedded import embedded_patches, load_embedded_dataset
from .transforms import TRAIN_CROPS, EvalTransform, TrainTransform, adm_resize_short_side, to_tensor

__all__ = [
    "TRAIN_CROPS",
    "DecodedImageDataset",
    "DecodedImageIterable",
    "EpochShuffleSampler",
    "EvalTransform",
    "TrainTransform",
    "adm_resize_short_side",
    "collate_images",
    "embedded_patches",
    "load_embedded_dataset",
    "load_image_dataset",
    "to_tensor",
]
