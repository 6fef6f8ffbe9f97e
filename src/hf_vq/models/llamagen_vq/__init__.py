from .configuration_llamagen_vq import LlamaGenVQConfig
from .modeling_llamagen_vq import LlamaGenVQModel

__all__ = ["LlamaGenVQConfig", "LlamaGenVQModel"]
