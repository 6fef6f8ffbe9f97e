"""``CVQVAEConfig`` (configuration_cvq_vae.py) and ``CVQVAEModel`` (modeling_cvq_vae.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["CVQVAEConfig", "CVQVAEModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"CVQVAEConfig": ".configuration_cvq_vae", "CVQVAEModel": ".modeling_cvq_vae"})
