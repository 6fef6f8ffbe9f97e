"""``VQGANLCConfig`` (configuration_vqgan_lc.py) and ``VQGANLCModel`` (modeling_vqgan_lc.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["VQGANLCConfig", "VQGANLCModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"VQGANLCConfig": ".configuration_vqgan_lc", "VQGANLCModel": ".modeling_vqgan_lc"})
