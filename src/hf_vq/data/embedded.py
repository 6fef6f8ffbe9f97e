"""The embedded default dataset: crops of the real photographs that ship with scikit-image.

No download: every image comes from ``skimage.data``. Whole source images are held out
for validation, so validation crops show content the model never saw.
"""

import numpy as np
from PIL import Image

TRAIN_IMAGES = (
    "astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
    "coins", "moon", "brick", "grass", "gravel",
)
VALIDATION_IMAGES = ("chelsea", "camera")
SPLITS = {"train": TRAIN_IMAGES, "validation": VALIDATION_IMAGES}


def _source_image(name: str) -> Image.Image:
    import skimage.data

    array = getattr(skimage.data, name)()
    if array.dtype != np.uint8:
        array = (array.astype(np.float32) * 255).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def embedded_patches(split: str = "train", num_patches: int = None, patch_size: int = 64, seed: int = 0):
    """Deterministic random square windows (side 48 px to the short side / 2) resized to ``patch_size``.

    Returns ``(images, labels)``: PIL images and the index of their source photograph.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r} for the embedded dataset; choose one of {list(SPLITS)}.")
    names = SPLITS[split]
    num_patches = num_patches or (2048 if split == "train" else 256)
    rng = np.random.default_rng(seed + (0 if split == "train" else 1))
    sources = [_source_image(name) for name in names]
    images, labels = [], []
    for i in range(num_patches):
        label = i % len(sources)
        source = sources[label]
        width, height = source.size
        side = int(rng.integers(48, max(49, min(width, height) // 2 + 1)))
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - side + 1))
        patch = source.crop((left, top, left + side, top + side)).resize((patch_size, patch_size), Image.BICUBIC)
        images.append(patch)
        labels.append(label)
    return images, labels


def load_embedded_dataset(split: str = "train", num_patches: int = None, patch_size: int = 64, seed: int = 0):
    """The embedded crops as a ``datasets.Dataset`` with ``image`` and ``label`` columns."""
    import datasets

    images, labels = embedded_patches(split, num_patches, patch_size, seed)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
