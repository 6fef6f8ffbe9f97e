"""``MaskGITVQGANConfig`` (configuration_maskgit_vqgan.py) and ``MaskGITVQGANModel`` (modeling_maskgit_vqgan.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["MaskGITVQGANConfig", "MaskGITVQGANModel"]
__getattr__, __dir__ = lazy_exports(
    globals(), {"MaskGITVQGANConfig": ".configuration_maskgit_vqgan", "MaskGITVQGANModel": ".modeling_maskgit_vqgan"}
)
