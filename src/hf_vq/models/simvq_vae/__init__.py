from .configuration_simvq_vae import SimVQVAEConfig
from .modeling_simvq_vae import SimVQVAEModel

__all__ = ["SimVQVAEConfig", "SimVQVAEModel"]
