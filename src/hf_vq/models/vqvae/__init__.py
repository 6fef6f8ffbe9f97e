from .configuration_vqvae import VQVAEConfig
from .modeling_vqvae import VQVAEModel

__all__ = ["VQVAEConfig", "VQVAEModel"]
