"""A folder of JPEG photographs for the benchmarks that read images from disk (no download).

Random crops (a third to all of the short side) of the colour photographs that ship with
scikit-image, written at ``size`` x ``size`` or at their crop size, in ``root/photos/`` (one
class folder: the layout both ``torchvision.datasets.ImageFolder`` and ``datasets``'
``imagefolder`` read).
"""

from pathlib import Path

PHOTOS = ("astronaut", "coffee", "rocket", "chelsea", "immunohistochemistry", "retina", "hubble_deep_field")


def write_jpeg_folder(root, count: int, size: int | None = None, seed: int = 0, quality: int = 90) -> Path:
    """``count`` JPEGs in ``root/photos``; ``size``: resize every crop to it (None: keep the crop's size,
    so the loaders resize as they would real photographs). Returns ``root``."""
    import numpy as np
    import skimage.data
    from PIL import Image

    root = Path(root)
    folder = root / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]
    for index in range(count):
        source = sources[index % len(sources)]
        width, height = source.size
        side = int(rng.integers(min(width, height) // 3, min(width, height) + 1))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crop = source.crop((left, top, left + side, top + side))
        if size is not None:
            crop = crop.resize((size, size), Image.BICUBIC)
        crop.save(folder / f"{index:05d}.jpg", quality=quality)
    return root
