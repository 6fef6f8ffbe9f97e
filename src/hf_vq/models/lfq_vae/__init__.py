from .configuration_lfq_vae import LFQVAEConfig
from .modeling_lfq_vae import LFQVAEModel

__all__ = ["LFQVAEConfig", "LFQVAEModel"]
