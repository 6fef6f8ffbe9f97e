"""gFID and Inception Score of generated samples.

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


@torch.no_grad()
def compute_inception_score(samples: np.ndarray, classifier, splits: int = 1, batch_size: int = 64) -> dict:
    """Inception Score ``exp(E_x KL(p(y|x) || p(y)))`` of ``samples`` (N, H, W, C) uint8.

    ``classifier.class_logits(images in [0, 1])`` gives the class logits (``FIDInceptionV3``: the
    1008-way head of the pytorch-fid weights, as ADM's evaluator). With ``splits`` > 1 the score is
    computed on that many equal chunks (the usual protocol: 10 splits of 50,000) and averaged.
    """
    samples = np.asarray(samples)
    if samples.ndim != 4 or samples.dtype != np.uint8:
        raise ValueError(f"samples must be uint8 (N, H, W, C) as generate_samples returns; got {samples.dtype} {samples.shape}.")
    if not 1 <= splits <= len(samples):
        raise ValueError(f"splits must be in [1, number of samples {len(samples)}]; got {splits}.")
    device = next(classifier.parameters()).device
    probabilities = torch.cat([
        torch.softmax(classifier.class_logits(((batch + 1) / 2).to(device)).double(), dim=-1).cpu()
        for batch in _batches(samples, batch_size)
    ])
    scores = []
    for chunk in torch.tensor_split(probabilities, splits):
        marginal = chunk.mean(0, keepdim=True)
        kl = (chunk * (torch.log(chunk.clamp_min(1e-30)) - torch.log(marginal.clamp_min(1e-30)))).sum(1)
        scores.append(float(torch.exp(kl.mean())))
    return {
        "inception_score": float(np.mean(scores)),
        "inception_score_std": float(np.std(scores)),
        "splits": splits,
        "num_samples": int(len(samples)),
        "classifier": feature_extractor_description(classifier),
    }


__all__ = ["compute_gfid", "compute_inception_score"]
