"""hf_vq: Hugging Face-native discrete image tokenizers.

``import hf_vq`` registers every tokenizer with ``AutoConfig``, ``AutoModel`` and
``AutoImageProcessor``, and the autoregressive GPTs with ``AutoConfig`` and ``AutoModel``
(``hf_vq.models.auto.register_auto_classes``). The classes below are imported on first use,
so ``import hf_vq`` itself loads no torch, diffusers, datasets or evaluation code.
"""

from .models.auto import register_auto_classes
from .utils.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "CVQVAEConfig": ".models",
    "CVQVAEModel": ".models",
    "FSQVAEConfig": ".models",
    "FSQVAEModel": ".models",
    "IBQVAEConfig": ".models",
    "IBQVAEModel": ".models",
    "LFQVAEConfig": ".models",
    "LFQVAEModel": ".models",
    "LlamaGenVQConfig": ".models",
    "LlamaGenVQModel": ".models",
    "SimVQVAEConfig": ".models",
    "SimVQVAEModel": ".models",
    "MaskGITVQGANConfig": ".models",
    "MaskGITVQGANModel": ".models",
    "TiTokConfig": ".models",
    "TiTokModel": ".models",
    "VQGANConfig": ".models",
    "VQGANModel": ".models",
    "VQGANLCConfig": ".models",
    "VQGANLCModel": ".models",
    "VQGANFSQConfig": ".models",
    "VQGANFSQModel": ".models",
    "VQGANCVQConfig": ".models",
    "VQGANCVQModel": ".models",
    "VQImageProcessor": ".processing",
    "VQKDConfig": ".models",
    "VQKDModel": ".models",
    "VQVAEConfig": ".models",
    "VQVAEModel": ".models",
    "VQTokenizerPreTrainedModel": ".models",
    "LlamaGenGPTConfig": ".models",
    "LlamaGenGPTModel": ".models",
    "LlamaGenGPTPreTrainedModel": ".models",
    "UsageError": ".utils.errors",
}
__all__ = [*_EXPORTS, "register_auto_classes"]
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

register_auto_classes()
