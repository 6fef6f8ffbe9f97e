"""``SimVQVAEConfig`` (configuration_simvq_vae.py) and ``SimVQVAEModel`` (modeling_simvq_vae.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["SimVQVAEConfig", "SimVQVAEModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"SimVQVAEConfig": ".configuration_simvq_vae", "SimVQVAEModel": ".modeling_simvq_vae"})
