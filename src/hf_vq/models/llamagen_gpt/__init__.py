"""The LlamaGen GPT: ``LlamaGenGPTConfig`` (configuration_llamagen_gpt.py) and the model (modeling_llamagen_gpt.py)."""

from ...utils.lazy import lazy_exports

__all__ = [
    "LLAMAGEN_GPT_PRESETS",
    "LlamaGenGPTConfig",
    "LlamaGenGPTModel",
    "LlamaGenGPTOutput",
    "LlamaGenGPTPreTrainedModel",
    "LlamaGenKVCache",
]
__getattr__, __dir__ = lazy_exports(globals(), {
    "LLAMAGEN_GPT_PRESETS": ".configuration_llamagen_gpt",
    "LlamaGenGPTConfig": ".configuration_llamagen_gpt",
    "LlamaGenGPTModel": ".modeling_llamagen_gpt",
    "LlamaGenGPTOutput": ".modeling_llamagen_gpt",
    "LlamaGenGPTPreTrainedModel": ".modeling_llamagen_gpt",
    "LlamaGenKVCache": ".modeling_llamagen_gpt",
})
