from .configuration_cvq_vae import CVQVAEConfig
from .modeling_cvq_vae import CVQVAEModel

__all__ = ["CVQVAEConfig", "CVQVAEModel"]
