"""PSNR as an ``evaluate`` module (hf_vq's benchmark protocol), loadable offline:

    evaluate.load(hf_vq.evaluation.evaluate_module_path("psnr"))

Inputs: images (H, W, C) or (H, W) as float arrays in [0, 1] (data_range 1). Output: the
mean PSNR over the images, and the per-image values.
"""

import datasets
import evaluate
import numpy as np
import torch

from hf_vq.evaluation.metrics import psnr

_DESCRIPTION = "Peak signal-to-noise ratio per image with data_range 1, averaged (as scikit-image's peak_signal_noise_ratio)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: reconstructed images, (H, W, C) or (H, W) float arrays in [0, 1].
    references: the original images, same shapes.
Returns:
    psnr: mean PSNR in dB; psnr_per_image: list of per-image values.
"""
_CITATION = ""


def images_to_batch(images) -> torch.Tensor:
    """One (H, W[, C]) image in [0, 1] -> a (1, C, H, W) tensor in [-1, 1], as hf_vq's metrics take."""
    array = np.asarray(images, dtype=np.float64)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"Each image must be (H, W) or (H, W, C); got shape {array.shape}.")
    return torch.from_numpy(array).permute(2, 0, 1)[None] * 2 - 1


class PSNR(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float64")))),
                "references": datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float64")))),
            }),
        )

    def _compute(self, predictions, references):
        values = [
            float(psnr(images_to_batch(prediction), images_to_batch(reference))[0])
            for prediction, reference in zip(predictions, references)
        ]
        return {"psnr": float(np.mean(values)), "psnr_per_image": values}
