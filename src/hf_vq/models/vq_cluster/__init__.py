"""``VQClusterConfig`` (configuration_vq_cluster.py) and ``VQClusterModel`` (modeling_vq_cluster.py), imported on first use."""

from ...utils.lazy import lazy_exports

__all__ = ["VQClusterConfig", "VQClusterModel"]
__getattr__, __dir__ = lazy_exports(globals(), {"VQClusterConfig": ".configuration_vq_cluster", "VQClusterModel": ".modeling_vq_cluster"})
