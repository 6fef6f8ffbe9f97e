"""SSIM as an ``evaluate`` module (hf_vq's benchmark protocol), loadable offline:

    evaluate.load(hf_vq.evaluation.evaluate_module_path("ssim"))

Inputs: images (H, W, C) or (H, W) as float arrays in [0, 1] (data_range 1). Output: the
mean SSIM over the images (``ssim``), and the per-image values (``ssim_per_image``).
"""

# The module, not the class: evaluate.load takes the first Metric class it finds here.
from hf_vq.evaluation import per_image_metric
from hf_vq.evaluation.metrics import ssim


class SSIM(per_image_metric.PerImageMetric):
    metric_name = "ssim"
    description = (
        "Structural similarity per image as scikit-image's structural_similarity(data_range=1, channel_axis=-1): "
        "7x7 uniform window, sample covariance, K1 0.01, K2 0.03; averaged over images."
    )
    metric_fn = staticmethod(ssim)
