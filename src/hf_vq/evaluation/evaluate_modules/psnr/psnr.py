"""PSNR as an ``evaluate`` module (hf_vq's benchmark protocol), loadable offline:

    evaluate.load(hf_vq.evaluation.evaluate_module_path("psnr"))

Inputs: images (H, W, C) or (H, W) as float arrays in [0, 1] (data_range 1). Output: the
mean PSNR over the images (``psnr``, dB), and the per-image values (``psnr_per_image``).
"""

# The module, not the class: evaluate.load takes the first Metric class it finds here.
from hf_vq.evaluation import per_image_metric
from hf_vq.evaluation.metrics import psnr


class PSNR(per_image_metric.PerImageMetric):
    metric_name = "psnr"
    description = "Peak signal-to-noise ratio per image with data_range 1, averaged (as scikit-image's peak_signal_noise_ratio)."
    metric_fn = staticmethod(psnr)
