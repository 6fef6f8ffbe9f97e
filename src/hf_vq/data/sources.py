"""Where evaluation images come from: the embedded set, an image folder or a Hub dataset.

``load_image_source(source, split)`` returns a sequence of PIL images and a description
of the data (recorded with every metric and every FID reference).
"""

from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
IMAGE_COLUMNS = ("image", "img", "pixel_values")


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


class HubImageColumn:
    """The image column of a ``datasets.Dataset`` as a sequence of PIL images."""

    def __init__(self, dataset, column: str):
        self.dataset = dataset
        self.column = column

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index][self.column]


def _image_column(dataset, name: str) -> str:
    import datasets

    for column, feature in dataset.features.items():
        if isinstance(feature, datasets.Image):
            return column
    for column in IMAGE_COLUMNS:
        if column in dataset.column_names:
            return column
    raise ValueError(f"Dataset {name!r} has no image column; its columns are {dataset.column_names}.")


def load_image_source(source: str = "embedded", split: str = "validation", max_images: int | None = None):
    """(images, description) for ``source``: "embedded", an image folder, or a Hub dataset name."""
    if source == "embedded":
        from .embedded import load_embedded_dataset

        dataset = load_embedded_dataset(split)
        images, description = HubImageColumn(dataset, "image"), f"embedded {split} split"
    elif Path(source).is_dir():
        images, description = ImageFolder(source), f"image folder {source}"
    elif Path(source).exists():
        raise ValueError(f"--data {source} is a file; pass a folder of images, 'embedded' or a Hub dataset name.")
    else:
        import datasets

        dataset = datasets.load_dataset(source, split=split)
        images, description = HubImageColumn(dataset, _image_column(dataset, source)), f"{source} {split} split"
    if max_images is not None and max_images < len(images):
        images = _FirstImages(images, max_images)
        description += f" (first {max_images})"
    return images, description


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
