"""Official LlamaGen class-conditional GPT checkpoints (``c2i_B_256.pt`` ...) -> ``LlamaGenGPTModel``.

The official keys map one to one onto ours by renaming. The head count is not in the
weights (the fused q/k/v matrix has the same shape for any split into heads), so the
caller names a preset (or passes ``num_attention_heads``); everything else that has a
shape is read from the weights and checked against the config.
"""

import os

import torch

from ..models.llamagen_gpt import (
    LLAMAGEN_GPT_PRESETS,
    LlamaGenGPTConfig,
    LlamaGenGPTModel,
)
from .common import check_finite_weights, load_checkpoint, rename_state_dict, save_converted

SOURCE = "LlamaGen GPT"

# (official key pattern, our key); the layer index is carried over.
KEY_RENAMES = [
    (r"cls_embedding\.embedding_table\.weight", "class_embedding.weight"),
    (r"tok_embeddings\.weight", "token_embedding.weight"),
    (r"layers\.(\d+)\.attention\.wqkv\.weight", r"layers.\1.attention.qkv_proj.weight"),
    (r"layers\.(\d+)\.attention\.wo\.weight", r"layers.\1.attention.o_proj.weight"),
    (r"layers\.(\d+)\.feed_forward\.w1\.weight", r"layers.\1.feed_forward.gate_proj.weight"),
    (r"layers\.(\d+)\.feed_forward\.w3\.weight", r"layers.\1.feed_forward.up_proj.weight"),
    (r"layers\.(\d+)\.feed_forward\.w2\.weight", r"layers.\1.feed_forward.down_proj.weight"),
    (r"layers\.(\d+)\.attention_norm\.weight", r"layers.\1.attention_norm.weight"),
    (r"layers\.(\d+)\.ffn_norm\.weight", r"layers.\1.ffn_norm.weight"),
    (r"norm\.weight", "norm.weight"),
    (r"output\.weight", "lm_head.weight"),
]
# Training wrappers prefix the keys: DDP "module.", torch.compile "_orig_mod.".
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def load_official_state_dict(checkpoint: str | os.PathLike | dict) -> dict:
    """A path or a loaded checkpoint -> the bare official state dict."""
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    for container in ("model", "module", "state_dict"):
        if container in checkpoint and isinstance(checkpoint[container], dict):
            checkpoint = checkpoint[container]
            break
    state_dict = {}
    for key, value in checkpoint.items():
        for prefix in WRAPPER_PREFIXES:
            key = key.removeprefix(prefix)
        state_dict[key] = value
    return state_dict


def convert_llamagen_gpt_state_dict(official_state_dict: dict) -> dict:
    """Rename every official key; an unknown key is an error (no weight is silently dropped)."""
    converted, unmatched = rename_state_dict(official_state_dict, KEY_RENAMES, dropped=())
    if unmatched:
        raise ValueError(f"Unexpected key(s) {unmatched} in the LlamaGen GPT checkpoint (is this a c2i GPT checkpoint?).")
    return converted


def config_for_state_dict(state_dict: dict, preset: str | None, **config_overrides) -> LlamaGenGPTConfig:
    """Read the sizes that the converted weights fix, take the head count from the preset, and check they agree."""
    hidden_size = state_dict["token_embedding.weight"].shape[1]
    num_layers = 1 + max(int(key.split(".")[1]) for key in state_dict if key.startswith("layers."))
    query_and_kv_rows = state_dict["layers.0.attention.qkv_proj.weight"].shape[0]
    from_weights = {
        "vocab_size": state_dict["token_embedding.weight"].shape[0],
        "num_classes": state_dict["class_embedding.weight"].shape[0] - 1,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
    }
    if preset is not None:
        expected = LLAMAGEN_GPT_PRESETS.get(preset)
        if expected and (expected["hidden_size"], expected["num_hidden_layers"]) != (hidden_size, num_layers):
            raise ValueError(
                f"The checkpoint has hidden size {hidden_size} and {num_layers} layers, but preset {preset} has "
                f"{expected['hidden_size']} and {expected['num_hidden_layers']}: pick the matching preset."
            )
        config = LlamaGenGPTConfig.from_preset(preset, **{**from_weights, **config_overrides})
    elif "num_attention_heads" not in config_overrides:
        raise ValueError("Name a preset (GPT-B, GPT-L, ...) or pass num_attention_heads: heads cannot be read from weights.")
    else:
        config = LlamaGenGPTConfig(**{**from_weights, **config_overrides})

    expected_rows = (config.num_attention_heads + 2 * config.key_value_heads) * config.head_dim
    if query_and_kv_rows != expected_rows:
        raise ValueError(
            f"The fused q/k/v weight has {query_and_kv_rows} rows; {config.num_attention_heads} heads and "
            f"{config.key_value_heads} key/value heads need {expected_rows}: set num_key_value_heads."
        )
    intermediate = state_dict["layers.0.feed_forward.gate_proj.weight"].shape[0]
    if intermediate != config.intermediate_size:
        raise ValueError(
            f"The feed-forward width is {intermediate} but the config gives {config.intermediate_size}: "
            "set multiple_of / ffn_dim_multiplier to match the checkpoint."
        )
    return config


def convert_llamagen_gpt_checkpoint(
    checkpoint: str | os.PathLike | dict,
    out_dir: str | os.PathLike | None,
    preset: str | None,
    **config_overrides,
) -> LlamaGenGPTModel:
    """Convert an official c2i GPT checkpoint, save it with ``save_pretrained`` (if ``out_dir``) and return it.

    ``config_overrides`` set what the weights cannot tell: ``block_size`` (256 for 256px VQ-16,
    576 for 384px), ``rope_type``, dropouts, or ``num_attention_heads`` when ``preset`` is None.
    """
    state_dict = convert_llamagen_gpt_state_dict(load_official_state_dict(checkpoint))
    check_finite_weights(state_dict, SOURCE)
    config = config_for_state_dict(state_dict, preset, **config_overrides)
    # Build without allocating, then adopt the checkpoint's tensors (a 3B model is not held twice).
    with torch.device("meta"):
        model = LlamaGenGPTModel(config)
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.eval()
    save_converted(model, out_dir)
    return model


__all__ = ["convert_llamagen_gpt_checkpoint", "convert_llamagen_gpt_state_dict", "load_official_state_dict"]
