"""``VQVAEConfig`` (configuration_vqvae.py) and ``VQVAEModel`` (modeling_vqvae.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["VQVAEConfig", "VQVAEModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"VQVAEConfig": ".configuration_vqvae", "VQVAEModel": ".modeling_vqvae"})
