from .configuration_vqgan_lc import VQGANLCConfig
from .modeling_vqgan_lc import VQGANLCModel

__all__ = ["VQGANLCConfig", "VQGANLCModel"]
