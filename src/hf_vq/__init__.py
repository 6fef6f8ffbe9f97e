"""hf_vq: Hugging Face-native discrete image tokenizers.

Importing ``hf_vq`` registers every tokenizer with ``AutoConfig``, ``AutoModel`` and
``AutoImageProcessor``, and the autoregressive GPTs with ``AutoConfig`` and ``AutoModel``.
"""

from .models import (
    CVQVAEConfig,
    CVQVAEModel,
    FSQVAEConfig,
    FSQVAEModel,
    LFQVAEConfig,
    LFQVAEModel,
    LlamaGenGPTConfig,
    LlamaGenGPTModel,
    LlamaGenGPTPreTrainedModel,
    LlamaGenVQConfig,
    LlamaGenVQModel,
    SimVQVAEConfig,
    SimVQVAEModel,
    VQGANConfig,
    VQGANLCConfig,
    VQGANLCModel,
    VQGANModel,
    VQTokenizerPreTrainedModel,
    VQVAEConfig,
    VQVAEModel,
    register_auto_classes,
)
from .processing import VQImageProcessor

register_auto_classes()

__version__ = "0.1.0"

__all__ = [
    "CVQVAEConfig",
    "CVQVAEModel",
    "FSQVAEConfig",
    "FSQVAEModel",
    "LFQVAEConfig",
    "LFQVAEModel",
    "LlamaGenVQConfig",
    "LlamaGenVQModel",
    "SimVQVAEConfig",
    "SimVQVAEModel",
    "VQGANConfig",
    "VQGANModel",
    "VQGANLCConfig",
    "VQGANLCModel",
    "VQImageProcessor",
    "VQVAEConfig",
    "VQVAEModel",
    "VQTokenizerPreTrainedModel",
    "LlamaGenGPTConfig",
    "LlamaGenGPTModel",
    "LlamaGenGPTPreTrainedModel",
]
