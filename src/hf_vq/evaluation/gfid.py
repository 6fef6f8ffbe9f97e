"""gFID: the FID of generated samples against cached reference statistics.

The protocol (REFERENCES): one sample per ImageNet-val image (50,000, 50 per class),
pytorch-fid Inception features, reference statistics of the center-cropped val images.
The samples come from ``hf_vq.generation.generate_samples``; this module feeds them to the
FID statistics and the Frechet distance of ``hf_vq.evaluation.fid`` and says what the number
was computed against. It lives in evaluation so that generation never imports evaluation.
"""

from pathlib import Path

import numpy as np
import torch

from .fid import FIDStatistics, compute_fid_statistics, feature_extractor_description, frechet_distance


def _batches(samples: np.ndarray, batch_size: int):
    for start in range(0, len(samples), batch_size):
        uint8 = torch.from_numpy(np.ascontiguousarray(samples[start : start + batch_size]))
        yield uint8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def compute_gfid(samples: np.ndarray, reference, feature_extractor, batch_size: int = 64) -> dict:
    """gFID of ``samples`` (N, H, W, C) uint8 against ``reference`` (FIDStatistics or its .npz path).

    Returns the score with the reference's description and image count and the sample
    count, so every reported gFID names what it was measured against.
    """
    samples = np.asarray(samples)
    if samples.ndim != 4 or samples.dtype != np.uint8:
        raise ValueError(f"samples must be uint8 (N, H, W, C) as generate_samples returns; got {samples.dtype} {samples.shape}.")
    if not isinstance(reference, FIDStatistics):
        reference = FIDStatistics.load(Path(reference))
    extractor_name = feature_extractor_description(feature_extractor)
    statistics = compute_fid_statistics(
        _batches(samples, batch_size), feature_extractor, description=f"{len(samples)} generated samples, {extractor_name}"
    )
    return {
        "gfid": frechet_distance(statistics, reference),
        "num_samples": int(len(samples)),
        "feature_extractor": extractor_name,
        "reference": {"description": reference.description, "num_images": reference.num_images},
    }


__all__ = ["compute_gfid"]
