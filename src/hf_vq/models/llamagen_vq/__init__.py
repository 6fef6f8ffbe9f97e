"""``LlamaGenVQConfig`` (configuration_llamagen_vq.py) and ``LlamaGenVQModel`` (modeling_llamagen_vq.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["LlamaGenVQConfig", "LlamaGenVQModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"LlamaGenVQConfig": ".configuration_llamagen_vq", "LlamaGenVQModel": ".modeling_llamagen_vq"})
