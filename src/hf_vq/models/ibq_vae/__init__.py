"""``IBQVAEConfig`` (configuration_ibq_vae.py) and ``IBQVAEModel`` (modeling_ibq_vae.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["IBQVAEConfig", "IBQVAEModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"IBQVAEConfig": ".configuration_ibq_vae", "IBQVAEModel": ".modeling_ibq_vae"})
