"""The tokenizers: one folder each (configuration_<name>.py + modeling_<name>.py)."""

from .auto import TOKENIZERS, register_auto_classes
from .base import VQDecoderOutput, VQEncoderOutput, VQModelOutput, VQTokenizerConfig, VQTokenizerPreTrainedModel
from .cvq_vae import CVQVAEConfig, CVQVAEModel
from .fsq_vae import FSQVAEConfig, FSQVAEModel
from .lfq_vae import LFQVAEConfig, LFQVAEModel
from .simvq_vae import SimVQVAEConfig, SimVQVAEModel
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
    "SimVQVAEConfig",
    "SimVQVAEModel",
    "VQVAEConfig",
    "VQVAEModel",
]
