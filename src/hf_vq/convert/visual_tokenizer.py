"""Convert a checkpoint of the ImageNet 64x64 benchmark code (xyfJASON/visual-tokenizer-pytorch).

Its ``train_vqvae.py`` saves ``{'model': VQModel.state_dict()}`` to ``ckpt/step*/model.pt``.
The weights carry no architecture (codebook size and dimension are visible, the quantizer
kind is not), so the row's config is given: a YAML of ``configs/imagenet64/`` (its ``model:``
section) or a tokenizer config object.

Official key -> our key:

- ``encoder.*`` and ``decoder.*`` are unchanged (SimpleCNN keeps the benchmark's names);
- ``enc2code`` -> ``quant_conv``, ``code2dec`` -> ``post_quant_conv``;
- ``quantizer.codebook.weight`` -> ``quantizer.codebook`` (SimVQ: ``quantizer.frozen_codebook``);
- SimVQ's ``quantizer.codebook_proj`` -> ``quantizer.codebook_projection``;
- EMA's ``quantizer.ema_sumz`` / ``quantizer.ema_sumn`` -> the EMA behaviour's ``ema_sum`` /
  ``ema_count``;
- FSQ and LFQ have no weights in the quantizer.
"""

import os

import torch
import yaml

from ..models import TOKENIZERS
from .common import extract_state_dict, load_checkpoint, load_converted_weights, rename_state_dict, save_converted

SOURCE = "visual-tokenizer-pytorch SimpleCNN"
#: The tokenizers whose quantizer the benchmark code has (CVQ-VAE is not part of it).
SUPPORTED_MODEL_TYPES = ("vqvae", "fsq_vae", "simvq_vae", "lfq_vae", "ibq_vae")


def load_row_config(path: str | os.PathLike):
    """The tokenizer config of a training YAML's ``model:`` section (e.g. ``configs/imagenet64/vq_d64_k512.yaml``)."""
    if not os.path.isfile(path):
        raise ValueError(f"Config {str(path)!r} does not exist; pass a YAML of configs/imagenet64/.")
    with open(path) as handle:
        document = yaml.safe_load(handle)
    model_section = dict((document or {}).get("model") or {})
    if "model_type" not in model_section:
        raise ValueError(f"{str(path)!r} has no `model:` section with a `model_type`; pass a YAML of configs/imagenet64/.")
    if "pretrained" in model_section:
        raise ValueError(f"{str(path)!r} loads pretrained weights (model.pretrained); pass a config that builds a model.")
    model_type = model_section.pop("model_type")
    if model_type not in TOKENIZERS:
        raise ValueError(f"Unknown model_type {model_type!r} in {str(path)!r}; choose one of {sorted(TOKENIZERS)}.")
    return TOKENIZERS[model_type][0](**model_section)


def _one_key(our_keys, suffix: str, what: str) -> str:
    matches = [key for key in our_keys if key.startswith("quantizer.") and key.endswith(suffix)]
    if len(matches) != 1:
        raise ValueError(f"Expected one {what} buffer ending in {suffix!r} in the model; found {matches}.")
    return matches[0]


def visual_tokenizer_rename_rules(model) -> list:
    """The (pattern, replacement) table from the benchmark's ``VQModel`` keys to ``model``'s keys."""
    our_keys = set(model.state_dict())
    rules = [
        (r"(encoder|decoder)\.(.+)", r"\1.\2"),
        (r"enc2code\.(weight|bias)", r"quant_conv.\1"),
        (r"code2dec\.(weight|bias)", r"post_quant_conv.\1"),
        (r"quantizer\.codebook_proj\.(weight|bias)", r"quantizer.codebook_projection.\1"),
    ]
    codebook = "quantizer.frozen_codebook" if "quantizer.frozen_codebook" in our_keys else "quantizer.codebook"
    rules.append((r"quantizer\.codebook\.weight", codebook))
    if any(key.endswith("ema_count") for key in our_keys):
        rules.append((r"quantizer\.ema_sumz", _one_key(our_keys, "ema_sum", "EMA sum")))
        rules.append((r"quantizer\.ema_sumn", _one_key(our_keys, "ema_count", "EMA count")))
    return rules


def convert_visual_tokenizer_state_dict(state_dict: dict, config):
    """Our tokenizer (eval mode) holding the benchmark's ``VQModel`` weights; raises on any key or shape mismatch."""
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"The benchmark code has no {config.model_type!r} tokenizer; its SimpleCNN rows are {SUPPORTED_MODEL_TYPES}."
        )
    model = TOKENIZERS[config.model_type][1](config)
    renamed, unmatched = rename_state_dict(state_dict, visual_tokenizer_rename_rules(model), dropped=())
    renamed = {key: value.to(torch.float32) for key, value in renamed.items()}
    load_converted_weights(model, renamed, unmatched, SOURCE)
    return model.eval()


def convert_visual_tokenizer_checkpoint(checkpoint_path, out_dir, config):
    """``model.pt`` of the benchmark -> ``save_pretrained`` folder (model + ``VQImageProcessor``).

    ``config``: a tokenizer config, or the path of a training YAML whose ``model:`` section is the row.
    """
    if isinstance(config, (str, os.PathLike)):
        config = load_row_config(config)
    state_dict = extract_state_dict(load_checkpoint(checkpoint_path), "model", SOURCE)
    model = convert_visual_tokenizer_state_dict(state_dict, config)
    save_converted(model, out_dir)
    return model


__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "convert_visual_tokenizer_checkpoint",
    "convert_visual_tokenizer_state_dict",
    "load_row_config",
    "visual_tokenizer_rename_rules",
]
