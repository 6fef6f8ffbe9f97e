"""``LFQVAEConfig`` (configuration_lfq_vae.py) and ``LFQVAEModel`` (modeling_lfq_vae.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["LFQVAEConfig", "LFQVAEModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"LFQVAEConfig": ".configuration_lfq_vae", "LFQVAEModel": ".modeling_lfq_vae"})
