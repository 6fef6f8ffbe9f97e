"""Convert BEiT v2's released VQ-KD tokenizers (``vqkd_encoder_base_decoder_{1,3}x768x12_{clip,dino}-*.pth``,
weights under ``model``) to ``VQKDModel``.

Official key -> our key (``{e}`` = ``encoder`` or ``decoder``):

- ``{e}.cls_token`` / ``{e}.pos_embed`` -> ``{e}.class_token`` / ``{e}.position_embedding``;
  ``{e}.patch_embed.proj`` -> ``{e}.patch_embed``; ``{e}.fc_norm`` -> ``{e}.norm``
- ``{e}.blocks.{i}.(norm1|norm2|attn.qkv.weight|attn.proj|mlp.fc1|mlp.fc2)`` -> the same names;
  ``attn.q_bias`` and ``attn.v_bias`` -> ``attn.qkv.bias`` = [q_bias, 0, v_bias] (BEiT has no key
  bias; a zero one computes the same attention)
- ``encode_task_layer.{0,2}`` / ``decode_task_layer.{0,2}`` -> ``encoder_head.{0,2}`` / ``decoder_head.{0,2}``
- ``quantize.embedding.weight`` -> ``quantizer.codebook``; ``quantize.embedding.initted`` ->
  ``quantizer.behaviours.0.initialised`` (k-means init done: fine-tuning keeps the codes)
- dropped: the quantizer's usage statistics (``quantize.cluster_size``, ``quantize.embedding.cluster_size``,
  ``quantize.embedding.embed_avg``; the official forward never reads them) and, as the official
  loader does, ``teacher*``, ``scaling*`` and ``loss*`` entries.

The architecture is read off the weights, except the head count (not in the weights: width / 64,
12 for ViT-B, unless ``num_heads`` says otherwise) and the teacher (512-d targets: CLIP ViT-B/16
projected features, 768-d: DINO ViT-B/16; other sizes need ``teacher``).
"""

import math
import os
import re

import torch

from ..models.vqkd import VQKDConfig, VQKDModel
from .common import (
    count_indexed,
    extract_state_dict,
    load_checkpoint,
    load_converted_weights,
    rename_state_dict,
    require_keys,
    save_converted,
)

SOURCE = "VQ-KD"
DROPPED_KEYS = [r"quantize\.cluster_size", r"quantize\.embedding\.(cluster_size|embed_avg)", r"(teacher|scaling|loss).*"]
VQKD_VARIANTS = {
    "vqkd_encoder_base_decoder_1x768x12_clip": VQKDConfig.base_decoder_1x768x12_clip,
    "vqkd_encoder_base_decoder_3x768x12_clip": VQKDConfig.base_decoder_3x768x12_clip,
    "vqkd_encoder_base_decoder_1x768x12_dino": VQKDConfig.base_decoder_1x768x12_dino,
}
# Teacher feature size -> (teacher, features) of the released tokenizers.
TEACHERS_BY_FEATURE_DIM = {512: ("openai/clip-vit-base-patch16", "projected"), 768: ("facebook/dino-vitb16", "last_hidden_state")}
_PART = r"(encoder|decoder)"
_BIAS_KEY = re.compile(rf"{_PART}\.blocks\.(\d+)\.attn\.(q|v)_bias")


def vqkd_rename_rules():
    """The (pattern, replacement) table from official VQ-KD keys to ``VQKDModel`` keys (q/v biases are fused after)."""
    return [
        (rf"{_PART}\.cls_token", r"\1.class_token"),
        (rf"{_PART}\.pos_embed", r"\1.position_embedding"),
        (rf"{_PART}\.patch_embed\.proj\.(weight|bias)", r"\1.patch_embed.\2"),
        (rf"{_PART}\.fc_norm\.(weight|bias)", r"\1.norm.\2"),
        (rf"{_PART}\.blocks\.(\d+)\.((?:norm1|norm2|attn\.proj|mlp\.fc1|mlp\.fc2)\.(?:weight|bias)|attn\.qkv\.weight)",
         r"\1.blocks.\2.\3"),
        (rf"{_PART}\.blocks\.(\d+)\.attn\.(q|v)_bias", r"\1.blocks.\2.attn.\3_bias"),
        (r"encode_task_layer\.([02])\.(weight|bias)", r"encoder_head.\1.\2"),
        (r"decode_task_layer\.([02])\.(weight|bias)", r"decoder_head.\1.\2"),
        (r"quantize\.embedding\.weight", "quantizer.codebook"),
        (r"quantize\.embedding\.initted", "quantizer.behaviours.0.initialised"),
    ]


def _fuse_qkv_biases(renamed: dict) -> dict:
    """``attn.q_bias`` + ``attn.v_bias`` -> ``attn.qkv.bias`` = [q, 0, v]; other keys unchanged."""
    fused = {key: value for key, value in renamed.items() if not _BIAS_KEY.fullmatch(key)}
    prefixes = sorted({key[: -len(".q_bias")] for key in renamed if key.endswith(".q_bias")}
                      | {key[: -len(".v_bias")] for key in renamed if key.endswith(".v_bias")})
    for prefix in prefixes:
        q_bias, v_bias = renamed.get(f"{prefix}.q_bias"), renamed.get(f"{prefix}.v_bias")
        if q_bias is None or v_bias is None:
            raise ValueError(f"The {SOURCE} checkpoint has only one of {prefix}.q_bias / v_bias; both are needed.")
        fused[f"{prefix}.qkv.bias"] = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])
    return fused


def infer_vqkd_config(state_dict, num_heads: int | None = None, teacher: str | None = None,
                      teacher_features: str | None = None) -> VQKDConfig:
    """The architecture read off the weight shapes (heads and teacher as the module docstring says)."""
    require_keys(state_dict, ["encoder.cls_token", "encoder.pos_embed", "encoder.patch_embed.proj.weight",
                              "decoder.cls_token", "quantize.embedding.weight", "decode_task_layer.2.weight"], SOURCE)
    encoder_width = state_dict["encoder.cls_token"].shape[-1]
    decoder_width = state_dict["decoder.cls_token"].shape[-1]
    patch_size = state_dict["encoder.patch_embed.proj.weight"].shape[-1]
    grid = math.isqrt(state_dict["encoder.pos_embed"].shape[1] - 1)
    codebook_size, codebook_dim = state_dict["quantize.embedding.weight"].shape
    feature_dim = state_dict["decode_task_layer.2.weight"].shape[0]
    if teacher is None:
        if feature_dim not in TEACHERS_BY_FEATURE_DIM:
            raise ValueError(
                f"The decoder predicts {feature_dim}-d teacher features, which is neither the CLIP (512) nor the DINO (768) "
                "tokenizer: name the teacher (--teacher NAME_OR_PATH, --teacher-features)."
            )
        teacher = TEACHERS_BY_FEATURE_DIM[feature_dim][0]
    # The released tokenizers' features for their size (CLIP: projected, DINO: last_hidden_state).
    teacher_features = teacher_features or TEACHERS_BY_FEATURE_DIM.get(feature_dim, (None, "projected"))[1]
    heads = {}
    for part, width in (("encoder", encoder_width), ("decoder", decoder_width)):
        heads[part] = num_heads or width // 64
        if heads[part] < 1 or width % heads[part]:
            raise ValueError(f"Cannot infer the {part} head count from width {width}: pass num_heads (--num-heads).")
    return VQKDConfig(
        image_size=grid * patch_size,
        patch_size=patch_size,
        encoder_hidden_size=encoder_width,
        encoder_num_layers=count_indexed(state_dict, "encoder.blocks.{}."),
        encoder_num_heads=heads["encoder"],
        decoder_hidden_size=decoder_width,
        decoder_num_layers=count_indexed(state_dict, "decoder.blocks.{}."),
        decoder_num_heads=heads["decoder"],
        codebook_size=codebook_size,
        codebook_dim=codebook_dim,
        teacher_name_or_path=teacher,
        teacher_features=teacher_features,
        teacher_feature_dim=feature_dim,
    )


def convert_vqkd_state_dict(state_dict: dict, config: VQKDConfig) -> VQKDModel:
    """Official VQ-KD state dict -> ``VQKDModel`` (strict: every key and shape must agree)."""
    if not config.kmeans_init:
        raise ValueError("Convert with kmeans_init=True: the checkpoint's `initted` flag maps to the k-means behaviour.")
    renamed, unmatched = rename_state_dict(state_dict, vqkd_rename_rules(), DROPPED_KEYS)
    renamed = {key: value.float() for key, value in _fuse_qkv_biases(renamed).items()}
    initialised = renamed.get("quantizer.behaviours.0.initialised")
    if initialised is not None:
        renamed["quantizer.behaviours.0.initialised"] = initialised.reshape(()).bool()
    model = VQKDModel(config)
    load_converted_weights(model, renamed, unmatched, SOURCE)
    return model.eval()


def convert_vqkd_checkpoint(
    ckpt_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    variant: str | None = None,
    config: VQKDConfig | None = None,
    num_heads: int | None = None,
    teacher: str | None = None,
    teacher_features: str | None = None,
) -> VQKDModel:
    """Convert a BEiT v2 VQ-KD checkpoint; save it (with its image processor) to ``out_dir`` if given.

    Args:
        ckpt_path: the official ``.pth`` (weights under ``model``, or ``state_dict``) or a bare state dict.
        out_dir: where to ``save_pretrained``; ``None`` only returns the model.
        variant: one of ``VQKD_VARIANTS`` (the official model names); by default inferred from the weights.
        config: an explicit ``VQKDConfig`` instead.
        num_heads: attention heads of encoder and decoder when inferring (default width / 64).
        teacher / teacher_features: the teacher to record in the config (default by feature size: CLIP or DINO).
    """
    checkpoint = load_checkpoint(ckpt_path)
    weights_key = "state_dict" if "model" not in checkpoint and isinstance(checkpoint.get("state_dict"), dict) else "model"
    state_dict = extract_state_dict(checkpoint, weights_key, SOURCE)
    if sum(option is not None for option in (variant, config)) > 1:
        raise ValueError("Pass either variant or config, not both.")
    overrides = {key: value for key, value in (("teacher_name_or_path", teacher), ("teacher_features", teacher_features))
                 if value is not None}
    if variant is not None:
        if variant not in VQKD_VARIANTS:
            raise ValueError(f"Unknown {SOURCE} variant {variant!r}; choose one of {sorted(VQKD_VARIANTS)}.")
        config = VQKD_VARIANTS[variant](**overrides)
    elif config is None:
        config = infer_vqkd_config(state_dict, num_heads=num_heads, teacher=teacher, teacher_features=teacher_features)
    model = convert_vqkd_state_dict(state_dict, config)
    save_converted(model, out_dir)
    return model


__all__ = ["VQKD_VARIANTS", "convert_vqkd_checkpoint", "convert_vqkd_state_dict", "infer_vqkd_config", "vqkd_rename_rules"]
