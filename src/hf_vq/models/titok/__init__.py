"""``TiTokConfig`` (configuration_titok.py) and ``TiTokModel`` (modeling_titok.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["TiTokConfig", "TiTokModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"TiTokConfig": ".configuration_titok", "TiTokModel": ".modeling_titok"})
