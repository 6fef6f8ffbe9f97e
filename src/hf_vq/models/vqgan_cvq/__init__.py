"""``VQGANCVQConfig`` (configuration_vqgan_cvq.py) and ``VQGANCVQModel`` (modeling_vqgan_cvq.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["VQGANCVQConfig", "VQGANCVQModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"VQGANCVQConfig": ".configuration_vqgan_cvq", "VQGANCVQModel": ".modeling_vqgan_cvq"})
