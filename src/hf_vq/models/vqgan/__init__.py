"""``VQGANConfig`` (configuration_vqgan.py) and ``VQGANModel`` (modeling_vqgan.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["VQGANBackboneConfig", "VQGANConfig", "VQGANModel"]
__getattr__, __dir__ = lazy_exports(
    globals(),
    {"VQGANBackboneConfig": ".configuration_vqgan", "VQGANConfig": ".configuration_vqgan", "VQGANModel": ".modeling_vqgan"},
)
