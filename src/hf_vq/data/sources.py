"""Where evaluation images come from: the embedded set, an image folder or a Hub dataset.

``load_image_source(source, split)`` returns a sequence of PIL images and a description
of the data (recorded with every metric and every FID reference). Each sequence also
has a ``fingerprint()``: what the images are, so cached FID statistics of other images
(another folder with the same relative name, files changed since) are never reused.
"""

import hashlib
import json
import re
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
IMAGE_COLUMNS = ("image", "img", "pixel_values")
# "name" or "owner/name": what a Hub dataset id looks like (anything else that does not exist is a missing path).
HUB_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


def _digest(lines) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


class ImageFolder:
    """Every image file under ``root`` (recursively, sorted by path) as PIL images."""

    def __init__(self, root):
        self.root = Path(root)
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise ValueError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {self.root}.")

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        from PIL import Image

        with Image.open(self.paths[index]) as image:
            return image.convert("RGB")

    def describe(self, index) -> str:
        return str(self.paths[index])

    def fingerprint(self, count: int | None = None) -> dict:
        """The resolved folder and a digest of (relative path, size, mtime) of the first ``count`` files."""
        paths = self.paths[:count]
        lines = []
        for path in paths:
            stat = path.stat()
            lines.append(f"{path.relative_to(self.root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}")
        return {"kind": "image folder", "source": str(self.root.resolve()), "num_files": len(paths),
                "files_digest": _digest(lines)}


class HubImageColumn:
    """The image column of a ``datasets.Dataset`` as a sequence of PIL images."""

    def __init__(self, dataset, column: str, name: str = "dataset"):
        self.dataset = dataset
        self.column = column
        self.name = name

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index][self.column]

    def describe(self, index) -> str:
        return f"{self.name}[{index}]"

    def fingerprint(self, count: int | None = None) -> dict:
        """``datasets``' own fingerprint of the table, and the cache folder, named by the Hub revision."""
        cache_dirs = sorted({str(Path(f["filename"]).parent) for f in self.dataset.cache_files})
        return {"kind": "datasets", "source": self.name, "datasets_fingerprint": self.dataset._fingerprint,
                "cache_dirs": cache_dirs, "num_rows": len(self.dataset)}


def _image_column(dataset, name: str) -> str:
    import datasets

    for column, feature in dataset.features.items():
        if isinstance(feature, datasets.Image):
            return column
    for column in IMAGE_COLUMNS:
        if column in dataset.column_names:
            return column
    raise ValueError(f"Dataset {name!r} has no image column; its columns are {dataset.column_names}.")


def _load_hub_dataset(source: str, split: str):
    import datasets

    if not HUB_DATASET_ID.match(source):
        raise FileNotFoundError(
            f"--data {source}: no such folder ({Path(source).resolve()} does not exist). Pass an existing folder "
            "of images, 'embedded', or a Hub dataset id such as 'owner/name'."
        )
    try:
        return datasets.load_dataset(source, split=split)
    except Exception as error:  # offline, unknown id, bad split: datasets and huggingface_hub raise many types
        raise ValueError(
            f"--data {source} is neither an existing folder ({Path(source).resolve()} does not exist) nor a Hub "
            f"dataset that could be loaded ({type(error).__name__}: {error}). Check the path, or the dataset id, "
            "split and network / Hugging Face cache."
        ) from error


def load_image_source(source: str = "embedded", split: str = "validation", max_images: int | None = None):
    """(images, description) for ``source``: "embedded", an image folder, or a Hub dataset name."""
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be a positive number of images (or None for all); got {max_images}.")
    if source == "embedded":
        from .embedded import load_embedded_dataset

        dataset = load_embedded_dataset(split)
        images, description = HubImageColumn(dataset, "image", f"embedded {split}"), f"embedded {split} split"
    elif Path(source).is_dir():
        images, description = ImageFolder(source), f"image folder {source}"
    elif Path(source).exists():
        raise ValueError(f"--data {source} is a file; pass a folder of images, 'embedded' or a Hub dataset name.")
    else:
        dataset = _load_hub_dataset(source, split)
        name = f"{source} {split}"
        images, description = HubImageColumn(dataset, _image_column(dataset, source), name), f"{source} {split} split"
    if max_images is not None and max_images < len(images):
        images = _FirstImages(images, max_images)
        description += f" (first {max_images})"
    return images, description


def source_fingerprint(images) -> dict:
    """What ``images`` (from :func:`load_image_source`) are: JSON-ready, stable while the images are unchanged."""
    count = len(images)
    base = images.images if isinstance(images, _FirstImages) else images
    fingerprint = base.fingerprint(count) if hasattr(base, "fingerprint") else {"kind": type(base).__name__}
    fingerprint["num_images"] = count
    return json.loads(json.dumps(fingerprint))


class _FirstImages:
    def __init__(self, images, count: int):
        self.images = images
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        if index >= self.count:
            raise IndexError(index)
        return self.images[index]

    def describe(self, index) -> str:
        return self.images.describe(index)
