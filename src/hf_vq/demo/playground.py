"""What the tokenizer playground computes, without any user interface (``hf_vq.demo.app`` draws it).

Every function takes loaded models and PIL images and returns numbers, uint8 arrays (H, W, C)
and tensors, so it can be tested without a browser and reused in a notebook. A mistake the user
can fix (an unreadable file, a huge image, a code out of range) is a :class:`UsageError` whose
message says what to do; the app shows it in the page.
"""

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..evaluation import MissingWeightsError, load_lpips_network, lpips_distance, psnr, ssim
from ..evaluation import render_benchmark as _render_benchmark
from ..generation import generate_images
from ..utils.errors import UsageError
from ..utils.images import to_uint8

# Decoding a 25-megapixel upload already takes seconds and ~100 MB; anything larger is refused before decoding.
MAX_IMAGE_PIXELS = 25_000_000
# The bundled photographs (scikit-image ships them; nothing is downloaded).
EXAMPLE_IMAGES = ("chelsea", "astronaut", "coffee", "rocket", "camera", "coins")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DEFAULT_MODEL_DIR = "outputs/demo-vqvae"
# A token map is drawn at least this wide, each token a square cell.
TOKEN_MAP_MIN_SIDE = 256
LPIPS_MIN_IMAGE_SIZE = 31


# -- models ------------------------------------------------------------------------------------


@dataclass
class LoadedTokenizer:
    """A tokenizer with its image processor and the name the page shows."""

    name: str
    model: torch.nn.Module
    processor: object

    @property
    def codebook_size(self) -> int:
        return int(self.model.config.codebook_size)

    @property
    def image_size(self) -> int:
        return int(self.processor.size)


def missing_model_message(source: str) -> str:
    if os.path.normpath(source) == os.path.normpath(DEFAULT_MODEL_DIR):
        return (f"No tokenizer in {DEFAULT_MODEL_DIR}: train the demo model first with `hf-vq train` (a few "
                "minutes on a CPU), or pass a model folder or Hub id: `hf-vq demo MODEL_DIR_OR_HUB_ID`.")
    return (f"Tokenizer {source!r} not found: give a folder written by save_pretrained / `hf-vq train` "
            "(with config.json) or a Hub model id.")


def load_tokenizer(source: str, name: str | None = None, device: str = "cpu") -> LoadedTokenizer:
    """A saved tokenizer (folder or Hub id) and its ``VQImageProcessor`` (the model's default when none is saved)."""
    from transformers import AutoImageProcessor, AutoModel

    from ..models.auto import register_auto_classes

    register_auto_classes()
    source = str(source)
    # A Hub id is "owner/name"; anything else (or the default folder) must be a local folder with config.json.
    looks_local = (source.startswith((".", "/", "~")) or os.path.exists(source) or source.count("/") != 1
                   or os.path.normpath(source) == os.path.normpath(DEFAULT_MODEL_DIR))
    if looks_local and not (Path(source).expanduser() / "config.json").is_file():
        raise UsageError(missing_model_message(source))
    try:
        model = AutoModel.from_pretrained(source).to(device).eval()
    except OSError as error:  # not on the Hub, or the Hub unreachable
        raise UsageError(f"{missing_model_message(source)} ({error})") from error
    if not hasattr(model, "decode_indices"):
        raise UsageError(f"{source} is a {type(model).__name__}, not an hf_vq tokenizer (it has no decode_indices).")
    if not getattr(model, "decodes_pixels", True):
        raise UsageError(f"{source} is a {type(model).__name__}, whose decoder predicts teacher features, not images: "
                         "the playground shows tokenizers that reconstruct pixels (use its stage-2 pixel decoder).")
    try:
        processor = AutoImageProcessor.from_pretrained(source)
    except (OSError, ValueError):
        processor = model.default_image_processor()
    return LoadedTokenizer(name or Path(source).name or source, model, processor)


def load_gpt(source: str, tokenizers, device: str = "cpu"):
    """The GPT and the first loaded tokenizer whose codebook it predicts."""
    from transformers import AutoModel

    from ..models.auto import register_auto_classes

    register_auto_classes()
    if os.path.exists(source) and not (Path(source) / "config.json").is_file():
        raise UsageError(f"GPT folder {source} has no config.json: give a folder written by `hf-vq train-ar`.")
    gpt = AutoModel.from_pretrained(source).to(device).eval()
    for tokenizer in tokenizers:
        if tokenizer.codebook_size == gpt.config.vocab_size:
            return gpt, tokenizer
    sizes = ", ".join(f"{t.name}: {t.codebook_size}" for t in tokenizers)
    raise UsageError(f"The GPT {source} predicts {gpt.config.vocab_size} codes, but no loaded tokenizer has that "
                     f"many ({sizes}); load the tokenizer it was trained on.")


def try_load_lpips(weights_path=None):
    """LPIPS (AlexNet) when its weights are in the torch hub cache (or ``weights_path``), else None."""
    try:
        return load_lpips_network(weights_path).eval()
    except MissingWeightsError:
        return None


# -- images ------------------------------------------------------------------------------------


def example_image(name: str) -> Image.Image:
    """One of :data:`EXAMPLE_IMAGES` as an RGB PIL image."""
    if name not in EXAMPLE_IMAGES:
        raise UsageError(f"Unknown example {name!r}; choose one of {list(EXAMPLE_IMAGES)}.")
    import skimage.data

    array = getattr(skimage.data, name)()
    return Image.fromarray(array).convert("RGB")


def open_image(path) -> Image.Image:
    """An uploaded file as an RGB image; refuses non-images and images over :data:`MAX_IMAGE_PIXELS`."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            # Only the header is read so far: a huge image is refused before its pixels are decoded.
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UsageError(
                    f"{path.name} is {width}x{height} ({width * height / 1e6:.0f} megapixels); the playground takes "
                    f"images up to {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. Downscale it first."
                )
            return image.convert("RGB")
    except Image.DecompressionBombError as error:
        raise UsageError(f"{path.name} is too large to decode safely ({error}). Downscale it first.") from error
    except UnidentifiedImageError as error:
        raise UsageError(f"{path.name} is not an image Pillow can read: upload a PNG, JPEG, WebP, BMP, TIFF or "
                         "GIF file.") from error
    except OSError as error:  # a truncated or corrupt image file
        raise UsageError(f"{path.name} could not be read as an image ({error}); upload another file.") from error


def pixel_values_for(tokenizer: LoadedTokenizer, image: Image.Image) -> torch.Tensor:
    """The image as the tokenizer sees it: its processor's center crop, [-1, 1], the model's dtype."""
    pixel_values = tokenizer.processor(image, return_tensors="pt").pixel_values
    return pixel_values.to(tokenizer.model.device, tokenizer.model.dtype)


# -- reconstruction ----------------------------------------------------------------------------


@dataclass
class Reconstruction:
    """One tokenizer's view of one image."""

    original: torch.Tensor  # (1, C, H, W) in [-1, 1]: what the model was given
    reconstruction: torch.Tensor  # (1, C, H, W) in [-1, 1]
    indices: torch.Tensor  # (h, w) or (N,) for 1D tokenizers
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def image(self) -> np.ndarray:
        return to_uint8(self.reconstruction)[0]

    @property
    def original_image(self) -> np.ndarray:
        return to_uint8(self.original)[0]


def image_metrics(reconstruction: torch.Tensor, original: torch.Tensor, lpips_network=None) -> dict:
    """PSNR / SSIM (and LPIPS with a network and images of at least 31 px) of one image, as floats."""
    metrics = {"psnr": float(psnr(reconstruction, original)[0]), "ssim": float(ssim(reconstruction, original)[0])}
    if lpips_network is not None and min(original.shape[-2:]) >= LPIPS_MIN_IMAGE_SIZE:
        metrics["lpips"] = float(lpips_distance(reconstruction, original, lpips_network)[0])
    return metrics


def token_count_and_bits(tokenizer: LoadedTokenizer, indices: torch.Tensor) -> dict:
    num_tokens = int(indices.numel())
    return {"tokens": num_tokens, "bits": num_tokens * math.log2(tokenizer.codebook_size)}


@torch.no_grad()
def reconstruct(tokenizer: LoadedTokenizer, image: Image.Image, lpips_network=None) -> Reconstruction:
    """encode -> decode_indices of ``image`` at the tokenizer's resolution, with the metrics against its input."""
    start = time.perf_counter()
    pixel_values = pixel_values_for(tokenizer, image)
    indices = tokenizer.model.encode(pixel_values).indices
    reconstruction = tokenizer.model.decode_indices(indices).sample.float().clamp(-1, 1)
    seconds = time.perf_counter() - start
    metrics = {**image_metrics(reconstruction, pixel_values.float(), lpips_network),
               **token_count_and_bits(tokenizer, indices[0])}
    return Reconstruction(pixel_values.float().cpu(), reconstruction.cpu(), indices[0].cpu(), metrics, seconds)


def token_position(indices: torch.Tensor, row: int, column: int) -> tuple:
    """(row, column) as an index into ``indices``; 1D token sequences use the column only."""
    if indices.ndim == 1:
        if not 0 <= column < indices.shape[0]:
            raise UsageError(f"Token position {column} is outside the {indices.shape[0]} tokens (0 to {indices.shape[0] - 1}).")
        return (int(column),)
    height, width = indices.shape
    if not (0 <= row < height and 0 <= column < width):
        raise UsageError(f"Token (row {row}, column {column}) is outside the {height}x{width} grid "
                         f"(rows 0-{height - 1}, columns 0-{width - 1}).")
    return int(row), int(column)


@torch.no_grad()
def replace_token(tokenizer: LoadedTokenizer, indices: torch.Tensor, row: int, column: int, code: int):
    """``indices`` with one token set to ``code``, and the image ``decode_indices`` makes of them (1, C, H, W)."""
    position = token_position(indices, row, column)
    if not 0 <= code < tokenizer.codebook_size:
        raise UsageError(f"Code {code} is not in the codebook: choose 0 to {tokenizer.codebook_size - 1}.")
    edited = indices.clone()
    edited[position] = code
    sample = tokenizer.model.decode_indices(edited[None].to(tokenizer.model.device)).sample
    return edited, sample.float().clamp(-1, 1).cpu()


# -- token maps --------------------------------------------------------------------------------


def code_colours(codes: torch.Tensor) -> np.ndarray:
    """A distinct, fixed colour per code (uint8 RGB): hues spaced by the golden ratio, so neighbouring codes differ."""
    codes = codes.long().cpu().numpy()
    hue = (codes * 0.6180339887498949) % 1.0
    value = 0.65 + 0.35 * ((codes * 0.7548776662466927) % 1.0)
    # HSV -> RGB with saturation 0.75, vectorised.
    sector = np.floor(hue * 6).astype(int) % 6
    fraction = hue * 6 - np.floor(hue * 6)
    saturation = 0.75
    p = value * (1 - saturation)
    q = value * (1 - saturation * fraction)
    t = value * (1 - saturation * (1 - fraction))
    choices = [np.stack(channels, -1) for channels in
               ((value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value), (value, p, q))]
    rgb = np.choose(sector[..., None], choices)
    return (rgb * 255).round().astype(np.uint8)


def token_grid(indices: torch.Tensor) -> torch.Tensor:
    """Tokens as rows x columns: a 2D grid as it is, 1D tokens as one strip."""
    return indices[None] if indices.ndim == 1 else indices


def token_map_cell_size(indices: torch.Tensor) -> int:
    return max(4, math.ceil(TOKEN_MAP_MIN_SIDE / token_grid(indices).shape[1]))


def token_map(indices: torch.Tensor) -> np.ndarray:
    """The token grid drawn as a colour map (uint8 RGB), each token a square of :func:`token_map_cell_size` pixels."""
    grid = token_grid(indices)
    cell = token_map_cell_size(indices)
    colours = code_colours(grid)
    image = colours.repeat(cell, axis=0).repeat(cell, axis=1)
    # A dark line between cells so equal neighbours still read as separate tokens.
    image[cell - 1 :: cell, :, :] //= 2
    image[:, cell - 1 :: cell, :] //= 2
    return image


def token_at_pixel(indices: torch.Tensor, x: int, y: int) -> tuple:
    """The (row, column) of the token map cell under pixel (x, y), and its code."""
    grid = token_grid(indices)
    cell = token_map_cell_size(indices)
    row, column = min(int(y) // cell, grid.shape[0] - 1), min(int(x) // cell, grid.shape[1] - 1)
    return row, column, int(grid[row, column])


# -- codebook ----------------------------------------------------------------------------------


def tiles(image: Image.Image, tile_size: int, tiles_per_side: int) -> list:
    """The image center-cropped to a square, resized to ``tiles_per_side * tile_size`` and cut into tiles."""
    width, height = image.size
    side = min(width, height)
    square = image.crop(((width - side) // 2, (height - side) // 2, (width - side) // 2 + side, (height - side) // 2 + side))
    square = square.resize((tile_size * tiles_per_side,) * 2, Image.BICUBIC)
    return [square.crop((x * tile_size, y * tile_size, (x + 1) * tile_size, (y + 1) * tile_size))
            for y in range(tiles_per_side) for x in range(tiles_per_side)]


@dataclass
class CodebookStatistics:
    counts: torch.Tensor  # (K,) int64
    num_images: int
    token_shape: tuple

    @property
    def usage(self) -> float:
        return float((self.counts > 0).double().mean())

    @property
    def perplexity(self) -> float:
        probabilities = self.counts.double() / self.counts.sum()
        nonzero = probabilities[probabilities > 0]
        return float(torch.exp(-(nonzero * nonzero.log()).sum()))

    def most_used(self, count: int) -> list:
        order = torch.argsort(self.counts, descending=True, stable=True)
        return [(int(code), int(self.counts[code])) for code in order[:count] if self.counts[code] > 0]

    def least_used(self, count: int) -> list:
        """The rarest codes that were used at least once (unused codes are counted in ``usage``)."""
        used = torch.nonzero(self.counts > 0).flatten()
        order = used[torch.argsort(self.counts[used], stable=True)]
        return [(int(code), int(self.counts[code])) for code in order[:count]]


@torch.no_grad()
def codebook_statistics(tokenizer: LoadedTokenizer, images, tiles_per_side: int = 4, batch_size: int = 16,
                        progress=None) -> CodebookStatistics:
    """Code counts over ``images``, each cut into ``tiles_per_side``^2 tiles at the tokenizer's resolution."""
    if not images:
        raise UsageError("No images to count codes on: pick the examples or upload a folder of images.")
    crops = [tile for image in images for tile in tiles(image, tokenizer.image_size, tiles_per_side)]
    counts = torch.zeros(tokenizer.codebook_size, dtype=torch.long)
    token_shape = None
    starts = range(0, len(crops), batch_size)
    for start in (progress(starts) if progress else starts):
        indices = tokenizer.model.encode(pixel_values_for(tokenizer, crops[start : start + batch_size])).indices.cpu()
        token_shape = tuple(indices.shape[1:])
        counts += torch.bincount(indices.flatten(), minlength=tokenizer.codebook_size)
    return CodebookStatistics(counts, len(crops), token_shape)


@torch.no_grad()
def code_patches(tokenizer: LoadedTokenizer, codes, token_shape: tuple) -> list:
    """What each code looks like: ``decode_indices`` of a token grid filled with that code, uint8 (H, W, C)."""
    if not codes:
        return []
    indices = torch.tensor(codes, dtype=torch.long).view(-1, *([1] * len(token_shape))).expand(-1, *token_shape)
    return list(to_uint8(tokenizer.model.decode_indices(indices.to(tokenizer.model.device)).sample.float()))


def usage_histogram(statistics: CodebookStatistics, title: str) -> np.ndarray:
    """Counts per code (sorted, most used first) as a uint8 RGB plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = torch.sort(statistics.counts, descending=True).values.numpy()
    figure, axes = plt.subplots(figsize=(7, 3), dpi=100)
    axes.bar(np.arange(len(counts)), counts, width=1.0, color="tab:blue")
    axes.set_xlabel("codes, most used first")
    axes.set_ylabel("tokens")
    axes.set_yscale("symlog")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return image


def folder_images(paths) -> list:
    """Uploaded files (a folder) as images; files that are not images are skipped, none at all is an error."""
    images = []
    for path in paths:
        if Path(path).suffix.lower() in IMAGE_SUFFIXES:
            images.append(open_image(path))
    if not images:
        raise UsageError(f"None of the {len(paths)} uploaded files is an image ({', '.join(IMAGE_SUFFIXES)}).")
    return images


# -- generation --------------------------------------------------------------------------------


@torch.no_grad()
def generate(gpt, tokenizer: LoadedTokenizer, class_label: int, num_images: int = 4, guidance_scale: float = 2.0,
             top_k: int = 0, top_p: float = 1.0, temperature: float = 1.0, seed: int = 0, progress_bar=False) -> list:
    """``num_images`` samples of ``class_label`` as uint8 (H, W, C) arrays (``hf_vq.generation.generate_images``)."""
    num_classes = gpt.config.num_classes
    if not 0 <= class_label < num_classes:
        raise UsageError(f"Class {class_label} is not one of the GPT's {num_classes} classes (0 to {num_classes - 1}).")
    if num_images < 1:
        raise UsageError(f"Number of images must be at least 1; got {num_images}.")
    if temperature <= 0 or not 0 < top_p <= 1 or top_k < 0:
        raise UsageError(f"Sampling needs temperature > 0, 0 < top-p <= 1 and top-k >= 0; got {temperature}, "
                         f"{top_p} and {top_k}.")
    generator = torch.Generator(device=gpt.device).manual_seed(int(seed))
    images = generate_images(gpt, tokenizer.model, [int(class_label)] * int(num_images), guidance_scale=guidance_scale,
                             temperature=temperature, top_k=int(top_k), top_p=top_p, generator=generator,
                             progress_bar=progress_bar)
    return list(to_uint8(images.float()))


# -- runs --------------------------------------------------------------------------------------


def compare_runs(run_dirs, plot_path) -> tuple:
    """The benchmark table (markdown) of ``run_dirs`` and their usage plot saved to ``plot_path``."""
    run_dirs = [str(run_dir).strip() for run_dir in run_dirs if str(run_dir).strip()]
    if not run_dirs:
        raise UsageError("Give at least one run folder (written by `hf-vq train` or `hf-vq evaluate`).")
    return _render_benchmark(run_dirs, plot_path=plot_path), str(plot_path)


__all__ = [
    "DEFAULT_MODEL_DIR",
    "EXAMPLE_IMAGES",
    "MAX_IMAGE_PIXELS",
    "CodebookStatistics",
    "LoadedTokenizer",
    "Reconstruction",
    "code_colours",
    "code_patches",
    "codebook_statistics",
    "compare_runs",
    "example_image",
    "folder_images",
    "generate",
    "image_metrics",
    "load_gpt",
    "load_tokenizer",
    "open_image",
    "reconstruct",
    "replace_token",
    "token_at_pixel",
    "token_map",
    "try_load_lpips",
    "usage_histogram",
]
