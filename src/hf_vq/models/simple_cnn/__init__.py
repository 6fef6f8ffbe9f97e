"""The SimpleCNN backbone of the ImageNet-64 tokenizers: its config fields and the shared model class."""

from ...utils.lazy import lazy_exports

__all__ = ["SimpleCNNConfig", "SimpleCNNTokenizerModel"]
__getattr__, __dir__ = lazy_exports(
    globals(), {"SimpleCNNConfig": ".configuration_simple_cnn", "SimpleCNNTokenizerModel": ".modeling_simple_cnn"}
)
