"""Convert an official TiTok tokenizer (``tokenizer_titok_{s128,b64,l32}.bin``, the vq8k models, or a
Hub folder ``yucornetto/tokenizer_titok_*_imagenet``: ``model.safetensors`` + ``config.json``) to ``TiTokModel``.

Official key -> our key (``{e}`` = ``encoder`` or ``decoder``):

- ``latent_tokens`` -> ``encoder.latent_tokens``; ``encoder.class_embedding`` -> ``encoder.class_token``,
  ``{e}.positional_embedding`` -> ``{e}.position_embedding``,
  ``{e}.latent_token_positional_embedding`` -> ``{e}.latent_position_embedding``
- ``{e}.ln_pre`` / ``{e}.ln_post`` -> ``{e}.transformer.norm_pre`` / ``norm_post``
- ``{e}.transformer.{i}.ln_1 / ln_2 / attn.in_proj_* / attn.out_proj / mlp.c_fc / mlp.c_proj`` ->
  ``{e}.transformer.blocks.{i}.norm1 / norm2 / attn.qkv.* / attn.proj / mlp.fc1 / mlp.fc2``
- ``encoder.conv_out`` -> ``encoder.proj_out``; ``decoder.decoder_embed`` -> ``decoder.embed``;
  ``decoder.ffn.{0,2}`` -> ``decoder.head.{0,2}`` (two-stage) or ``decoder.ffn.0`` -> ``decoder.head``
  (single-stage); the 1x1 conv weights (out, in, 1, 1) become linear weights (out, in).
- ``quantize.embedding.weight`` -> ``quantizer.codebook``; ``pixel_quantize.embedding.weight`` -> ``pixel_codebook``
- ``pixel_decoder.*``: see ``hf_vq.modules.maskgit_vqgan`` (``up.{i}`` -> ``up_blocks.{L-1-i}``).
- ``quantize.embed_prob`` (the usage EMA of the vq8k models' dead-code restarts, a training state) is dropped.

The official weights take [0, 1] images; the converted model sets ``zero_one_pixels`` and takes
and returns [-1, 1] (same tokens; ``decode_indices`` = 2 x official decode - 1).
"""

import json
import math
import os
from pathlib import Path

from ..models.titok import TiTokConfig, TiTokModel
from ..models.titok.configuration_titok import VIT_SIZES
from .common import (
    count_indexed,
    extract_state_dict,
    load_checkpoint,
    load_converted_weights,
    rename_state_dict,
    require_keys,
    save_converted,
)

SOURCE = "TiTok"
DROPPED_KEYS = [r"quantize\.embed_prob"]
TITOK_PRESETS = {
    "s128": TiTokConfig.titok_s128,
    "b64": TiTokConfig.titok_b64,
    "l32": TiTokConfig.titok_l32,
    "bl64-vq8k": TiTokConfig.titok_bl64_vq8k,
    "bl128-vq8k": TiTokConfig.titok_bl128_vq8k,
    "sl256-vq8k": TiTokConfig.titok_sl256_vq8k,
}
_PART = r"(encoder|decoder)"
_BLOCK_NAMES = {
    "ln_1": "norm1", "ln_2": "norm2", "attn.in_proj_weight": "attn.qkv.weight", "attn.in_proj_bias": "attn.qkv.bias",
    "attn.out_proj.weight": "attn.proj.weight", "attn.out_proj.bias": "attn.proj.bias",
    "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
}
_RESNET_PARAM = r"(norm1|conv1|norm2|conv2)\.(weight|bias)"
# Official 1x1 convs that are linear layers here.
_CONV_TO_LINEAR = ("encoder.proj_out.weight", "decoder.head.weight", "decoder.head.0.weight", "decoder.head.2.weight")


def _block_param(match) -> str:
    name = match.group(3)
    for official, ours in _BLOCK_NAMES.items():
        if name == official or name.startswith(official + "."):
            name = ours + name[len(official):]
            break
    return f"{match.group(1)}.transformer.blocks.{match.group(2)}.{name}"


def titok_rename_rules(config: TiTokConfig):
    """The (pattern, replacement) table from official TiTok keys to ``TiTokModel`` keys."""
    num_levels = len(config.maskgit_channel_multipliers)

    def up_block(match):
        # The official pixel_decoder.up list is indexed by resolution; ours runs lowest resolution first.
        return str(num_levels - 1 - int(match.group(1)))

    head = (
        [(r"decoder\.ffn\.([02])\.(weight|bias)", r"decoder.head.\1.\2")]
        if config.decoder_type == "maskgit"
        else [(r"decoder\.ffn\.0\.(weight|bias)", r"decoder.head.\1"), (r"decoder\.conv_out\.(weight|bias)", r"decoder.conv_out.\1")]
    )
    return [
        (r"latent_tokens", "encoder.latent_tokens"),
        (r"encoder\.patch_embed\.(weight|bias)", r"encoder.patch_embed.\1"),
        (rf"{_PART}\.class_embedding", r"\1.class_token"),
        (rf"{_PART}\.positional_embedding", r"\1.position_embedding"),
        (rf"{_PART}\.latent_token_positional_embedding", r"\1.latent_position_embedding"),
        (r"decoder\.mask_token", "decoder.mask_token"),
        (rf"{_PART}\.ln_pre\.(weight|bias)", r"\1.transformer.norm_pre.\2"),
        (rf"{_PART}\.ln_post\.(weight|bias)", r"\1.transformer.norm_post.\2"),
        (
            rf"{_PART}\.transformer\.(\d+)\.(ln_[12]\.(?:weight|bias)|attn\.in_proj_(?:weight|bias)"
            r"|attn\.out_proj\.(?:weight|bias)|mlp\.c_(?:fc|proj)\.(?:weight|bias))",
            _block_param,
        ),
        (r"encoder\.conv_out\.(weight|bias)", r"encoder.proj_out.\1"),
        (r"decoder\.decoder_embed\.(weight|bias)", r"decoder.embed.\1"),
        *head,
        (r"quantize\.embedding\.weight", "quantizer.codebook"),
        (r"pixel_quantize\.embedding\.weight", "pixel_codebook"),
        (r"pixel_decoder\.(conv_in|norm_out|conv_out)\.(weight|bias)", r"pixel_decoder.\1.\2"),
        (rf"pixel_decoder\.mid\.(\d+)\.{_RESNET_PARAM}", r"pixel_decoder.mid_blocks.\1.\2.\3"),
        (rf"pixel_decoder\.up\.(\d+)\.block\.(\d+)\.{_RESNET_PARAM}",
         lambda m: f"pixel_decoder.up_blocks.{up_block(m)}.res_blocks.{m.group(2)}.{m.group(3)}.{m.group(4)}"),
        (r"pixel_decoder\.up\.(\d+)\.block\.(\d+)\.nin_shortcut\.weight",
         lambda m: f"pixel_decoder.up_blocks.{up_block(m)}.res_blocks.{m.group(2)}.shortcut.weight"),
        (r"pixel_decoder\.up\.(\d+)\.upsample_conv\.(weight|bias)",
         lambda m: f"pixel_decoder.up_blocks.{up_block(m)}.upsample_conv.{m.group(2)}"),
    ]


def convert_titok_state_dict(state_dict: dict, config: TiTokConfig) -> TiTokModel:
    """Official TiTok state dict -> ``TiTokModel`` (strict: every key and shape must agree)."""
    renamed, unmatched = rename_state_dict(state_dict, titok_rename_rules(config), DROPPED_KEYS)
    for key in _CONV_TO_LINEAR:
        tensor = renamed.get(key)
        if tensor is not None and tensor.ndim == 4 and tensor.shape[2:] == (1, 1):
            renamed[key] = tensor.reshape(tensor.shape[:2])
    model = TiTokModel(config)
    load_converted_weights(model, renamed, unmatched, SOURCE)
    return model.eval()


def config_from_official(official: dict) -> TiTokConfig:
    """Our config from the official one (the Hub ``config.json``: ``model.vq_model`` and ``dataset``)."""
    try:
        vq = official["model"]["vq_model"]
    except (KeyError, TypeError):
        raise ValueError(
            f"Not an official TiTok config: no model.vq_model section (top-level keys: {sorted(official)[:10]})."
        ) from None
    if vq.get("quantize_mode", "vq") != "vq":
        raise ValueError(f"Only vector-quantized TiTok models convert; this one has quantize_mode {vq['quantize_mode']!r}.")
    legacy, two_stage = vq.get("is_legacy", True), vq.get("finetune_decoder", True)
    if legacy != two_stage:
        raise ValueError(
            f"is_legacy={legacy} with finetune_decoder={two_stage} is a training-stage model (stage-1 logits without the "
            "MaskGIT pixel decoder, or a layout no release uses); convert a released tokenizer."
        )
    crop_size = official.get("dataset", {}).get("preprocessing", {}).get("crop_size", 256)
    return TiTokConfig.from_official_sizes(
        vq["vit_enc_model_size"], vq["vit_dec_model_size"],
        image_size=crop_size, num_latent_tokens=vq["num_latent_tokens"],
        patch_size=vq["vit_enc_patch_size"], decoder_patch_size=vq["vit_dec_patch_size"],
        codebook_size=vq["codebook_size"], codebook_dim=vq["token_size"], l2_norm=vq["use_l2_norm"],
        commitment_beta=vq.get("commitment_cost", 0.25),
        decoder_type="maskgit" if two_stage else "pixel", legacy_latent_layout=legacy,
    )


def infer_titok_config(state_dict: dict) -> TiTokConfig:
    """Read the architecture off the weight shapes. Heads are not in the weights: the widths must be
    the official ones (512 / 768 / 1024 -> 8 / 12 / 16 heads). ``l2_norm`` is not either: the released
    two-stage models use it, the single-stage vq8k models do not."""
    require_keys(
        state_dict,
        ["latent_tokens", "encoder.patch_embed.weight", "encoder.positional_embedding", "decoder.positional_embedding",
         "quantize.embedding.weight", "decoder.ffn.0.weight"],
        SOURCE,
    )
    widths = {}
    for part in ("encoder", "decoder"):
        width = state_dict[f"{part}.positional_embedding"].shape[1]
        sizes = [name for name, (w, _, _) in VIT_SIZES.items() if w == width]
        if not sizes:
            raise ValueError(
                f"The {part} width {width} is not an official TiTok size (512, 768, 1024), so its number of heads is "
                "unknown: pass an explicit TiTokConfig."
            )
        widths[part] = VIT_SIZES[sizes[0]]
    two_stage = "pixel_decoder.conv_in.weight" in state_dict
    patch_size = state_dict["encoder.patch_embed.weight"].shape[-1]
    grid = math.isqrt(state_dict["encoder.positional_embedding"].shape[0] - 1)
    decoder_grid = math.isqrt(state_dict["decoder.positional_embedding"].shape[0] - 1)
    codebook_size, codebook_dim = state_dict["quantize.embedding.weight"].shape
    fields = {}
    if two_stage:
        base = state_dict["pixel_decoder.conv_out.weight"].shape[1]
        num_levels = count_indexed(state_dict, "pixel_decoder.up.{}.")
        fields = {
            "maskgit_base_channels": base,
            "maskgit_channel_multipliers": [
                state_dict[f"pixel_decoder.up.{level}.block.0.conv1.weight"].shape[0] // base for level in range(num_levels)
            ],
            "maskgit_num_res_blocks": count_indexed(state_dict, "pixel_decoder.mid.{}."),
            "maskgit_z_channels": state_dict["pixel_decoder.conv_in.weight"].shape[1],
            "maskgit_codebook_size": state_dict["decoder.ffn.2.weight"].shape[0],
        }
    (ew, _, eh), (dw, _, dh) = widths["encoder"], widths["decoder"]
    return TiTokConfig(
        image_size=grid * patch_size, num_latent_tokens=state_dict["latent_tokens"].shape[0],
        encoder_hidden_size=ew, encoder_num_layers=count_indexed(state_dict, "encoder.transformer.{}."), encoder_num_heads=eh,
        decoder_hidden_size=dw, decoder_num_layers=count_indexed(state_dict, "decoder.transformer.{}."), decoder_num_heads=dh,
        patch_size=patch_size, decoder_patch_size=grid * patch_size // decoder_grid,
        codebook_size=codebook_size, codebook_dim=codebook_dim, l2_norm=two_stage,
        decoder_type="maskgit" if two_stage else "pixel", legacy_latent_layout=two_stage, **fields,
    )


def load_titok_weights(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """(state dict, official config or None) from a ``.bin`` / ``.pt`` / ``.safetensors`` file or a Hub folder."""
    path = Path(path)
    official_config = None
    if path.is_dir():
        config_file = path / "config.json"
        if config_file.is_file():
            official_config = json.loads(config_file.read_text())
        candidates = [path / "model.safetensors", path / "pytorch_model.bin"]
        found = [candidate for candidate in candidates if candidate.is_file()]
        if not found:
            raise ValueError(f"{str(path)!r} holds neither model.safetensors nor pytorch_model.bin: not a Hub TiTok folder.")
        path = found[0]
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not path.is_file():
            raise ValueError(f"Checkpoint {str(path)!r} does not exist or is not a file.")
        try:
            state_dict = load_file(path)
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{str(path)!r} is not a readable safetensors file: {error}") from error
    else:
        state_dict = extract_state_dict(load_checkpoint(path), "state_dict", SOURCE)
    return state_dict, official_config


def convert_titok_checkpoint(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    config: TiTokConfig | None = None,
    variant: str | None = None,
) -> TiTokModel:
    """Convert an official TiTok tokenizer; save it (with its image processor) to ``out_dir`` if given.

    Args:
        checkpoint: ``tokenizer_titok_*.bin`` (a state dict), a ``.safetensors`` file, or a Hub folder
            (``model.safetensors`` + the official ``config.json``).
        out_dir: where to ``save_pretrained``; ``None`` only returns the model.
        config: the architecture. By default: ``variant``, else the folder's ``config.json``, else
            inferred from the weight shapes.
        variant: one of ``TITOK_PRESETS`` ("s128", "b64", "l32", "bl64-vq8k", "bl128-vq8k", "sl256-vq8k").
    """
    if config is not None and variant is not None:
        raise ValueError("Pass either config or variant, not both.")
    state_dict, official_config = load_titok_weights(checkpoint)
    if config is None and variant is not None:
        if variant not in TITOK_PRESETS:
            raise ValueError(f"Unknown TiTok variant {variant!r}; choose one of {sorted(TITOK_PRESETS)}.")
        config = TITOK_PRESETS[variant]()
    elif config is None:
        config = config_from_official(official_config) if official_config is not None else infer_titok_config(state_dict)
    model = convert_titok_state_dict(state_dict, config)
    save_converted(model, out_dir)
    return model


__all__ = [
    "TITOK_PRESETS", "config_from_official", "convert_titok_checkpoint", "convert_titok_state_dict",
    "infer_titok_config", "titok_rename_rules",
]
