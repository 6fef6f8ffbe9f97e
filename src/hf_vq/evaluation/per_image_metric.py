"""The shared body of hf_vq's ``evaluate`` modules: a per-image metric averaged over images.

Each packaged module (``evaluate_modules/<name>/<name>.py``) subclasses
:class:`PerImageMetric` and names its metric function; ``evaluate.load(path)`` picks the
subclass defined in the module file.
"""

import datasets
import evaluate
import numpy as np
import torch

_KWARGS_DESCRIPTION = """
Args:
    predictions: reconstructed images, (H, W, C) or (H, W) float arrays in [0, 1].
    references: the original images, same shapes.
Returns:
    <name>: the mean over images; <name>_per_image: the list of per-image values.
"""


def images_to_batch(image) -> torch.Tensor:
    """One (H, W[, C]) image in [0, 1] -> a (1, C, H, W) tensor in [-1, 1], as hf_vq's metrics take."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"Each image must be (H, W) or (H, W, C); got shape {array.shape}.")
    return torch.from_numpy(array).permute(2, 0, 1)[None] * 2 - 1


class PerImageMetric(evaluate.Metric):
    """Subclasses set ``metric_name``, ``description`` and ``metric_fn`` (batch, batch) -> (B,)."""

    metric_name: str
    description: str
    metric_fn = None

    def _info(self):
        image = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("float64"))))
        return evaluate.MetricInfo(
            description=self.description,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": image, "references": image}),
        )

    def _compute(self, predictions, references):
        metric_fn = type(self).metric_fn
        values = [
            float(metric_fn(images_to_batch(prediction), images_to_batch(reference))[0])
            for prediction, reference in zip(predictions, references)
        ]
        return {self.metric_name: float(np.mean(values)), f"{self.metric_name}_per_image": values}
