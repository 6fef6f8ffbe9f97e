"""The training loader's pixels equal a straightforward reference computation, bit for bit.

The loader skips work that cannot change a pixel (no ``convert("RGB")`` copy of an image that is already
RGB, the float scaling written channel-first once). The reference here does every step the plain way, with
PIL and numpy only: ``Image.open(path).convert("RGB")``, the crop, ``resize(..., BICUBIC)`` (BOX halving
first for ADM's crop), the flip, ``np.asarray(...).astype(float32) / 127.5 - 1``. The random draws are the
documented ones: per image a generator seeded by (seed, epoch, index); scale, left, top, then the flip
(random_square), or the short side, top, left, then the flip (adm_random). Real photographs of odd sizes in
modes RGB, L, RGBA, P and CMYK, from a folder (map-style and streaming) and from in-memory bytes.
"""

import io
import math

import datasets
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from hf_vq.data import DecodedImageDataset, DecodedImageIterable, EvalTransform, TrainTransform, load_image_dataset
from hf_vq.data.datasets import image_generator

SEED = 7


def _photo(name, width, height):
    return Image.fromarray(getattr(skimage.data, name)()).crop((5, 3, 5 + width, 3 + height))


# (file name, image): odd sizes, every mode the loader converts, PNG and JPEG
IMAGES = {
    "rgb.jpg": lambda: _photo("astronaut", 173, 211),
    "rgb_wide.png": lambda: _photo("coffee", 397, 121),
    "gray.png": lambda: Image.fromarray(skimage.data.camera()).crop((0, 0, 151, 97)),
    "rgba.png": lambda: _photo("chelsea", 129, 131).convert("RGBA").rotate(17, expand=True),  # transparent corners
    "palette.png": lambda: _photo("rocket", 203, 167).quantize(64),
    "cmyk.jpg": lambda: _photo("coffee", 211, 173).convert("CMYK"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd_images")
    for name, make in IMAGES.items():
        image = make()
        image.save(root / name, quality=90) if name.endswith(".jpg") else image.save(root / name)
    modes = {name: Image.open(root / name).mode for name in IMAGES}
    assert modes == {"rgb.jpg": "RGB", "rgb_wide.png": "RGB", "gray.png": "L", "rgba.png": "RGBA",
                     "palette.png": "P", "cmyk.jpg": "CMYK"}
    return root


def _uniform(generator):
    return torch.rand((), generator=generator).item()


def _integer(low, high_inclusive, generator):
    return int(torch.randint(low, high_inclusive + 1, (), generator=generator))


def reference_train_pixels(path, size, crop, index, epoch=0, min_scale=0.8):
    """What the train transform is documented to compute, step by step with PIL and numpy."""
    generator = image_generator(SEED, epoch, index)
    image = Image.open(path).convert("RGB")
    width, height = image.size
    if crop == "random_square":
        side = max(1, round(min(width, height) * (min_scale + (1.0 - min_scale) * _uniform(generator))))
        left = _integer(0, width - side, generator)
        top = _integer(0, height - side, generator)
        out = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    else:  # ADM's random_crop_arr
        short = _integer(math.ceil(size / 1.0), math.ceil(size / min_scale), generator)
        while min(image.size) >= 2 * short:
            image = image.resize((image.size[0] // 2, image.size[1] // 2), Image.BOX)
        scale = short / min(image.size)
        image = image.resize((round(image.size[0] * scale), round(image.size[1] * scale)), Image.BICUBIC)
        top = _integer(0, image.size[1] - size, generator)
        left = _integer(0, image.size[0] - size, generator)
        out = image.crop((left, top, left + size, top + size))
    if _uniform(generator) < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    pixels = np.asarray(out).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return pixels.transpose(2, 0, 1)


def reference_eval_pixels(path, size):
    """ADM's center crop written out: BOX-halve, BICUBIC to the short side, center crop."""
    image = Image.open(path).convert("RGB")
    while min(image.size) >= 2 * size:
        image = image.resize((image.size[0] // 2, image.size[1] // 2), Image.BOX)
    scale = size / min(image.size)
    array = np.asarray(image.resize((round(image.size[0] * scale), round(image.size[1] * scale)), Image.BICUBIC))
    top, left = (array.shape[0] - size) // 2, (array.shape[1] - size) // 2
    crop = array[top:top + size, left:left + size]
    return (crop.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).transpose(2, 0, 1)


def assert_same_bits(tensor, expected):
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == expected.shape
    np.testing.assert_array_equal(tensor.numpy().view(np.int32), np.ascontiguousarray(expected).view(np.int32))


@pytest.mark.parametrize("crop, size", [("random_square", 64), ("adm_random", 48)])
def test_folder_loader_pixels_equal_the_plain_pil_numpy_computation(folder, crop, size):
    dataset = load_image_dataset("imagefolder", data_dir=str(folder))
    paths = [row["image"]["path"] for row in dataset]
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == sorted(IMAGES)
    loader = DecodedImageDataset(dataset, TrainTransform(size, crop=crop), seed=SEED)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        for index, path in enumerate(paths):
            item = loader[index]
            assert item["num_unreadable"] == 0
            assert_same_bits(item["pixel_values"], reference_train_pixels(path, size, crop, index, epoch))
    evaluation = DecodedImageDataset(dataset, EvalTransform(40))
    for index, path in enumerate(paths):
        assert_same_bits(evaluation[index]["pixel_values"], reference_eval_pixels(path, 40))


def test_streaming_and_in_memory_bytes_give_the_same_pixels(folder):
    transform = TrainTransform(32)
    streamed = load_image_dataset("imagefolder", data_dir=str(folder), streaming=True)
    items = list(DecodedImageIterable(streamed, transform, seed=SEED))
    paths = [row["image"]["path"] for row in streamed]
    assert len(items) == len(paths) == len(IMAGES)
    for position, (item, path) in enumerate(zip(items, paths)):
        assert_same_bits(item["pixel_values"], reference_train_pixels(path, 32, "random_square", position))
    # a Hub-style dataset that embeds the files' bytes (no path)
    names = sorted(IMAGES)
    in_memory = datasets.Dataset.from_dict(
        {"image": [{"bytes": (folder / name).read_bytes(), "path": None} for name in names]},
        features=datasets.Features({"image": datasets.Image(decode=False)}))
    loader = DecodedImageDataset(in_memory, transform, seed=SEED)
    for index, name in enumerate(names):
        expected = reference_train_pixels(io.BytesIO((folder / name).read_bytes()), 32, "random_square", index)
        assert_same_bits(loader[index]["pixel_values"], expected)
