from .configuration_llamagen_gpt import LLAMAGEN_GPT_PRESETS, LlamaGenGPTConfig
from .modeling_llamagen_gpt import (
    LlamaGenGPTModel,
    LlamaGenGPTOutput,
    LlamaGenGPTPreTrainedModel,
    LlamaGenKVCache,
)

__all__ = [
    "LLAMAGEN_GPT_PRESETS",
    "LlamaGenGPTConfig",
    "LlamaGenGPTModel",
    "LlamaGenGPTOutput",
    "LlamaGenGPTPreTrainedModel",
    "LlamaGenKVCache",
]
