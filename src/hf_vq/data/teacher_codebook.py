"""Codebooks from a teacher's patch features (VQGAN-LC's ``codebook_generation``), resumable.

The official recipe (zh460045050/VQGAN-LC): CLIP ViT-L/14 patch tokens after ``ln_post`` and
``proj`` (768-d, a 16 x 16 grid at 224 pixels), average-pooled 4 x 4 -> 16 vectors per
image, then k-means with ``codes / classes`` clusters inside every class (100 per class
for 100,000 codes on ImageNet-1k), the class centres concatenated in class order.

Here: images are center-cropped (ADM crop) to the teacher's resolution, features come from
:class:`~hf_vq.modules.teachers.FrozenTeacher`, k-means is :class:`~hf_vq.quantizers.clustering.KMeans`
(bounded memory). Only one class's features are in memory at a time. ``work_dir`` makes
the run resumable: each finished class's centres are added to ``work_dir/centres.safetensors``
(replaced atomically, with the list of finished classes in its metadata), the k-means of
the class in progress keeps its own state, so a killed run restarts at the class and
iteration where it stopped. Without ``per_class`` all features are clustered together.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..processing.image_processing_vq import center_crop_arr
from ..quantizers.clustering import KMeans
from .datasets import _decode_image
from .transforms import to_tensor

CENTRES_FILE = "centres.safetensors"


@torch.no_grad()
def extract_teacher_features(teacher, images, pool: int = 4, batch_size: int = 32, device=None,
                             progress: bool = True, description: str = "Teacher features") -> torch.Tensor:
    """Patch features of ``images`` (a sequence of dataset image cells), average-pooled ``pool x pool``.

    Returns float32 (num_images * (grid // pool) ** 2, feature_dim) on the CPU.
    """
    grid = teacher.grid_size
    if pool < 1 or grid % pool:
        raise ValueError(f"pool must divide the teacher's {grid}x{grid} patch grid; got {pool}.")
    device = device or next(teacher.parameters()).device
    batches = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=description, unit="batch")
    chunks = []
    for start in batches:
        cells = [images[index] for index in range(start, min(start + batch_size, len(images)))]
        pixels = torch.stack([to_tensor(center_crop_arr(_decode_image(cell), teacher.image_size)) for cell in cells])
        tokens = teacher(pixels.to(device)).float()  # (B, grid * grid, D)
        maps = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], grid, grid)
        pooled = F.avg_pool2d(maps, pool) if pool > 1 else maps
        chunks.append(pooled.flatten(2).transpose(1, 2).reshape(-1, tokens.shape[2]).cpu())
    return torch.cat(chunks)


class _Column:
    """``dataset[column]`` row by row without decoding the whole column at once."""

    def __init__(self, dataset, column: str, rows=None):
        self.dataset, self.column = dataset, column
        self.rows = list(range(len(dataset))) if rows is None else list(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.dataset[int(self.rows[index])][self.column]


def _finished_classes(path: Path):
    if not path.exists():
        return [], []
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    tensors = load_file(str(path))
    classes = json.loads(metadata["classes"])
    return classes, [tensors[f"class_{label}"] for label in classes]


def _save_finished(path: Path, classes: list, centres: list, settings: dict) -> None:
    temp = path.with_name(path.name + ".tmp")
    tensors = {f"class_{label}": value.contiguous() for label, value in zip(classes, centres)}
    save_file(tensors, str(temp), metadata=dict(settings, classes=json.dumps(classes)))
    os.replace(temp, path)


def build_codebook(
    teacher,
    dataset,
    num_codes: int,
    output: str | os.PathLike,
    *,
    image_column: str = "image",
    label_column: str = "label",
    per_class: bool = True,
    pool: int = 4,
    max_iters: int = 50,
    init: str = "k-means++",
    batch_size: int = 32,
    seed: int = 0,
    work_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """k-means codebook (num_codes, feature_dim) of ``teacher`` features over ``dataset``; saved to ``output``.

    ``dataset`` is a ``datasets.Dataset`` with ``image_column`` (and ``label_column`` when
    ``per_class``). With ``per_class``, ``num_codes`` must be a multiple of the number of
    classes. ``output`` is a safetensors file holding ``codebook`` and metadata recording the
    teacher and the recipe.
    """
    if image_column not in dataset.column_names:
        raise ValueError(f"The dataset has no column {image_column!r}; its columns are {dataset.column_names}.")
    output = Path(output)
    work_dir = Path(work_dir) if work_dir is not None else output.with_name(output.name + ".work")
    work_dir.mkdir(parents=True, exist_ok=True)
    settings = {"teacher": teacher.name_or_path, "features": teacher.features, "image_size": str(teacher.image_size),
                "pool": str(pool), "num_codes": str(num_codes), "per_class": str(per_class), "seed": str(seed),
                "num_images": str(len(dataset))}

    if per_class:
        if label_column not in dataset.column_names:
            raise ValueError(
                f"Per-class k-means needs labels: the dataset has no column {label_column!r} (columns "
                f"{dataset.column_names}). Pass --label-column, or --no-per-class for one k-means over all features."
            )
        labels = np.asarray(dataset[label_column])
        classes = sorted(int(label) for label in np.unique(labels))
        if num_codes % len(classes):
            raise ValueError(
                f"{num_codes} codes cannot be split evenly over {len(classes)} classes; choose a multiple of "
                f"{len(classes)} (VQGAN-LC: 100,000 codes = 100 per ImageNet class)."
            )
        codes_per_class = num_codes // len(classes)
        centres_path = work_dir / CENTRES_FILE
        done, centres = _finished_classes(centres_path)
        if done:
            with safe_open(str(centres_path), framework="pt") as handle:
                saved = handle.metadata() or {}
            different = sorted(key for key in settings if saved.get(key) != settings[key])
            if different:
                raise ValueError(f"{work_dir} holds a codebook run with other settings ({', '.join(different)}); "
                                 "use another --work-dir or delete it.")
        for label in classes:
            if label in done:
                continue
            rows = np.flatnonzero(labels == label)
            features = extract_teacher_features(
                teacher, _Column(dataset, image_column, rows), pool=pool, batch_size=batch_size, progress=progress,
                description=f"Class {label}: teacher features",
            )
            if features.shape[0] < codes_per_class:
                raise ValueError(
                    f"Class {label} gives {features.shape[0]} feature vectors (images x pooled patches), fewer than its "
                    f"{codes_per_class} codes. Use fewer codes, a smaller --pool or more images."
                )
            result = KMeans(codes_per_class, max_iters=max_iters, init=init, seed=seed + label).fit(
                features, state_path=work_dir / f"kmeans_class_{label}.safetensors"
            )
            done.append(label)
            centres.append(result.centroids.cpu())
            _save_finished(centres_path, done, centres, settings)
            for leftover in work_dir.glob(f"kmeans_class_{label}.*"):
                leftover.unlink()
        order = sorted(range(len(done)), key=lambda i: done[i])
        codebook = torch.cat([centres[i] for i in order])
    else:
        features = extract_teacher_features(teacher, _Column(dataset, image_column), pool=pool,
                                            batch_size=batch_size, progress=progress)
        result = KMeans(num_codes, max_iters=max_iters, init=init, seed=seed).fit(
            features, state_path=work_dir / "kmeans.safetensors", progress=progress
        )
        codebook = result.centroids.cpu()

    output.parent.mkdir(parents=True, exist_ok=True)
    temp = output.with_name(output.name + ".tmp")
    save_file({"codebook": codebook.contiguous()}, str(temp), metadata=settings)
    os.replace(temp, output)
    return codebook


def load_codebook(path: str | os.PathLike) -> torch.Tensor:
    """The ``codebook`` tensor of a file written by :func:`build_codebook`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"Codebook file {path} does not exist; make it with `hf-vq build-codebook --output {path}`.")
    tensors = load_file(str(path))
    if "codebook" not in tensors:
        raise ValueError(f"{path} has no 'codebook' tensor (keys: {sorted(tensors)}); was it made by hf-vq build-codebook?")
    return tensors["codebook"]


__all__ = ["build_codebook", "extract_teacher_features", "load_codebook"]
