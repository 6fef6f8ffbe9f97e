"""The tokenizers: one folder each (configuration_<name>.py + modeling_<name>.py)."""

from .auto import GENERATORS, TOKENIZERS, register_auto_classes
from .base import (
    VQDecoderOutput,
    VQEncoderOutput,
    VQModelOutput,
    VQTokenizerConfig,
    VQTokenizerPreTrainedModel,
)
from .cvq_vae import CVQVAEConfig, CVQVAEModel
from .fsq_vae import FSQVAEConfig, FSQVAEModel
from .lfq_vae import LFQVAEConfig, LFQVAEModel
from .llamagen_gpt import (
    LLAMAGEN_GPT_PRESETS,
    LlamaGenGPTConfig,
    LlamaGenGPTModel,
    LlamaGenGPTOutput,
    LlamaGenGPTPreTrainedModel,
    LlamaGenKVCache,
)
from .llamagen_vq import LlamaGenVQConfig, LlamaGenVQModel
from .simvq_vae import SimVQVAEConfig, SimVQVAEModel
from .vqgan import VQGANConfig, VQGANModel
from .vqgan_lc import VQGANLCConfig, VQGANLCModel
from .vqvae import VQVAEConfig, VQVAEModel

__all__ = [
    "TOKENIZERS",
    "register_auto_classes",
    "VQDecoderOutput",
    "VQEncoderOutput",
    "VQModelOutput",
    "VQTokenizerConfig",
    "VQTokenizerPreTrainedModel",
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
    "VQVAEConfig",
    "VQVAEModel",
    # autoregressive generation
    "GENERATORS",
    "LLAMAGEN_GPT_PRESETS",
    "LlamaGenGPTConfig",
    "LlamaGenGPTModel",
    "LlamaGenGPTOutput",
    "LlamaGenGPTPreTrainedModel",
    "LlamaGenKVCache",
]
