"""``VQKDConfig`` (configuration_vqkd.py) and ``VQKDModel`` (modeling_vqkd.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["VQKDConfig", "VQKDModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"VQKDConfig": ".configuration_vqkd", "VQKDModel": ".modeling_vqkd"})
