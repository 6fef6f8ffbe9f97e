"""Image datasets for training: the embedded default, an image folder or any Hub image dataset.

Images are read with ``decode=False`` and decoded here with PIL, so one unreadable or
corrupt file never crashes a long run: it is replaced by the next readable image, a
warning names it, and every batch carries the number of images it had to skip (the
trainer logs the running total). A dataset where nothing can be read still fails fast.

Randomness of the train crops does not come from the global RNG: each image draws its
crop from a generator seeded by (seed, epoch, index). The same run therefore sees the same
crops whatever the number of DataLoader workers, and after a resume.
"""

import functools
import io
import logging
import warnings

import torch
from PIL import Image

from .transforms import as_rgb

logger = logging.getLogger(__name__)

# Errors PIL raises for truncated, corrupt or non-image files.
UNREADABLE_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
# Give up (this is not a few bad files but a broken dataset) after this many failures in a row.
MAX_CONSECUTIVE_UNREADABLE = 50


def _decode_image(value) -> Image.Image:
    """A ``datasets`` image cell (decoded PIL image, or ``{"bytes", "path"}`` with decode=False) -> RGB PIL image."""
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            image = Image.open(io.BytesIO(value["bytes"]))
        elif value.get("path"):
            image = Image.open(value["path"])
        else:
            raise ValueError("image cell has neither bytes nor path")
        image.load()  # force the full decode here, where errors are caught
        return as_rgb(image)  # an RGB file is used as decoded, not copied
    raise ValueError(f"unsupported image cell of type {type(value).__name__}")


def image_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The random stream of one image in one epoch. Python hashes tuples of ints the same way in
    every process and run, so workers, ranks and resumed runs agree."""
    return torch.Generator().manual_seed(hash((seed, epoch, index)) & (2**63 - 1))


def _describe(value) -> str:
    if isinstance(value, dict) and value.get("path"):
        return value["path"]
    return "<in-memory image>"


def _decode_or_warn(value):
    """``(image, None)``, or ``(None, error)`` after a warning naming the unreadable file."""
    try:
        return _decode_image(value), None
    except UNREADABLE_IMAGE_ERRORS as error:
        warnings.warn(f"Skipping unreadable image {_describe(value)}: {error}", stacklevel=3)
        return None, error


class DecodedImageDataset(torch.utils.data.Dataset):
    """Map-style dataset of ``{"pixel_values", "num_unreadable"}`` items from a ``datasets.Dataset``.

    Args:
        dataset: a ``datasets.Dataset`` whose ``image_column`` was cast with ``decode=False``.
        transform: ``transform(image, generator)`` -> tensor (C, H, W).
        seed: base seed of the per-image generators (random crops, flips).
    """

    def __init__(self, dataset, transform, image_column: str = "image", seed: int = 0):
        self.dataset = dataset
        self.transform = transform
        self.image_column = image_column
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def _generator(self, index: int) -> torch.Generator:
        return image_generator(self.seed, self.epoch, index)

    def __getitem__(self, index: int) -> dict:
        skipped = 0
        while True:
            value = self.dataset[(index + skipped) % len(self.dataset)][self.image_column]
            image, error = _decode_or_warn(value)
            if image is not None:
                break
            skipped += 1
            if skipped >= min(MAX_CONSECUTIVE_UNREADABLE, len(self.dataset)):
                raise RuntimeError(
                    f"{skipped} images in a row could not be read (last: {_describe(value)}: {error}). "
                    "The dataset looks broken: check data.train_data_dir / data.dataset and data.image_column."
                ) from error
        return {"pixel_values": self.transform(image, self._generator(index)), "num_unreadable": skipped}


class DecodedImageIterable(torch.utils.data.IterableDataset):
    """Streaming counterpart of :class:`DecodedImageDataset` for ``datasets.IterableDataset``."""

    def __init__(self, dataset, transform, image_column: str = "image", seed: int = 0):
        self.dataset = dataset
        self.transform = transform
        self.image_column = image_column
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def __iter__(self):
        skipped = 0
        for position, example in enumerate(self.dataset):
            image, _ = _decode_or_warn(example[self.image_column])
            if image is None:
                skipped += 1
                continue
            generator = image_generator(self.seed, self.epoch, position)
            yield {"pixel_values": self.transform(image, generator), "num_unreadable": skipped}
            skipped = 0


class EpochShuffleSampler(torch.utils.data.Sampler):
    """A random permutation per epoch from ``seed + epoch``: the data order is a pure function of
    (seed, epoch), so a resumed run replays it exactly (Accelerate shards the batches across processes)."""

    def __init__(self, num_samples: int, seed: int = 0):
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())


def collate_images(items: list) -> dict:
    return {
        "pixel_values": torch.stack([item["pixel_values"] for item in items]),
        "num_unreadable": torch.tensor(sum(item["num_unreadable"] for item in items)),
    }


def load_image_dataset(
    dataset: str = "embedded",
    split: str = "train",
    *,
    dataset_config: str | None = None,
    data_dir: str | None = None,
    image_column: str = "image",
    streaming: bool = False,
):
    """A ``datasets`` dataset whose ``image_column`` is left undecoded (``decode=False``).

    ``dataset`` is ``"embedded"`` (the scikit-image crops), ``"imagefolder"`` (``data_dir``
    required) or a Hub dataset id such as ``ILSVRC/imagenet-1k``.
    """
    import datasets

    if dataset == "embedded":
        loaded = _embedded(split)
    elif dataset == "imagefolder":
        if not data_dir:
            raise ValueError("dataset `imagefolder` needs data.train_data_dir (a folder of images).")
        loaded = datasets.load_dataset("imagefolder", data_dir=data_dir, split=split, streaming=streaming)
    else:
        loaded = datasets.load_dataset(dataset, dataset_config, split=split, streaming=streaming)
    if image_column not in (loaded.column_names or [image_column]):
        raise ValueError(
            f"Dataset {dataset!r} split {split!r} has no column {image_column!r}; its columns are "
            f"{loaded.column_names}. Set data.image_column."
        )
    return loaded.cast_column(image_column, datasets.Image(decode=False))


@functools.lru_cache(maxsize=2)
def _embedded(split: str):
    """The embedded split, built once per process (cropping and PNG-encoding 2,048 images takes seconds; every
    training run reads it). Callers get ``cast_column``'s new dataset, so nothing they do reaches this one."""
    from .embedded import load_embedded_dataset

    return load_embedded_dataset(split)
