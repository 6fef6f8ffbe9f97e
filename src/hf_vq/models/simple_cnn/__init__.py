from .modeling_simple_cnn import SimpleCNNConfig, SimpleCNNTokenizerModel

__all__ = ["SimpleCNNConfig", "SimpleCNNTokenizerModel"]
