from .configuration_ibq_vae import IBQVAEConfig
from .modeling_ibq_vae import IBQVAEModel

__all__ = ["IBQVAEConfig", "IBQVAEModel"]
