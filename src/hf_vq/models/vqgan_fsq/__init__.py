"""``VQGANFSQConfig`` (configuration_vqgan_fsq.py) and ``VQGANFSQModel`` (modeling_vqgan_fsq.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["VQGANFSQConfig", "VQGANFSQModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"VQGANFSQConfig": ".configuration_vqgan_fsq", "VQGANFSQModel": ".modeling_vqgan_fsq"})
