"""``FSQVAEConfig`` (configuration_fsq_vae.py) and ``FSQVAEModel`` (modeling_fsq_vae.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["FSQVAEConfig", "FSQVAEModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"FSQVAEConfig": ".configuration_fsq_vae", "FSQVAEModel": ".modeling_fsq_vae"})
