"""Data: the embedded default dataset, image datasets and the benchmark transforms."""

from .embedded import embedded_patches, load_embedded_dataset
from .transforms import EvalTransform, TrainTransform, to_tensor

__all__ = ["EvalTransform", "TrainTransform", "embedded_patches", "load_embedded_dataset", "to_tensor"]
