from .configuration_fsq_vae import FSQVAEConfig
from .modeling_fsq_vae import FSQVAEModel

__all__ = ["FSQVAEConfig", "FSQVAEModel"]
