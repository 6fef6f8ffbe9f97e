"""What every checkpoint converter shares: safe loading, explicit key renaming, strict checks, saving.

A converter is a table of ``(pattern, replacement)`` rules over the official key names.
Every official key must match exactly one rule (or one of the ``dropped`` patterns, for
entries that are not part of the tokenizer, such as the discriminator); every key of our
model must be produced; every shape must agree. Anything else raises a ValueError that
lists the offending keys, so a checkpoint of another architecture never loads half-way.
"""

import argparse
import os
import pickle
import re
from collections.abc import Callable, Iterable, Sequence

import torch

from ..processing import VQImageProcessor

# A rule rewrites the keys that fully match ``pattern``: ``replacement`` is a ``re`` template
# (``\1``...) or a function of the match.
RenameRule = tuple[str, str | Callable[[re.Match], str]]

# -- key tables shared by the taming and LlamaGen VQ converters (both descend from taming's code) --
RESNET_PARAM = r"(norm1|conv1|norm2|conv2)\.(weight|bias)"
ATTENTION_PARAM = r"(norm|q|k|v|proj_out)\.(weight|bias)"
# encoder/decoder ends, the codebook and the 1x1 convs around the quantizer: same names in both code bases.
ENDPOINT_RULES: list[RenameRule] = [
    (r"(encoder|decoder)\.(conv_in|norm_out|conv_out)\.(weight|bias)", r"\1.\2.\3"),
]
QUANTIZER_RULES: list[RenameRule] = [
    (r"quantize\.embedding\.weight", "quantizer.codebook"),
    (r"(quant_conv|post_quant_conv)\.(weight|bias)", r"\1.\2"),
]


class _PicklePlaceholder:
    """Stands in for a non-tensor class pickled inside a training checkpoint (never instantiated with code)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


# Training checkpoints pickle a few harmless Python objects next to the weights:
# Lightning 1.x keys its callback states by the callback *class*, and LlamaGen stores its
# argparse Namespace. They are allowed through ``weights_only`` loading as inert stand-ins.
_CHECKPOINT_SAFE_GLOBALS = [
    argparse.Namespace,
    (_PicklePlaceholder, "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"),
    (_PicklePlaceholder, "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint"),
]


def load_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load(weights_only=True)`` of an official checkpoint: no arbitrary code runs.

    A missing, empty, truncated or non-PyTorch file is a ValueError that names the file.
    """
    if not os.path.isfile(path):
        raise ValueError(f"Checkpoint {str(path)!r} does not exist or is not a file.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"Checkpoint {str(path)!r} is empty (0 bytes): the download or copy did not finish.")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    # torch.save writes a zip archive (PK..) or, in its legacy format, a pickle (protocol byte 0x80).
    if not (magic.startswith(b"PK\x03\x04") or magic.startswith(b"\x80")):
        raise ValueError(
            f"{str(path)!r} is not a readable PyTorch checkpoint: it starts with {magic!r}, not with the bytes of a "
            "torch.save file (a zip archive or a pickle). Is it a text file, or another format? Download the official "
            "file again."
        )
    try:
        with torch.serialization.safe_globals(_CHECKPOINT_SAFE_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise _not_a_checkpoint(path, error) from error
        raise ValueError(
            f"Could not load {str(path)!r} with torch.load(weights_only=True): it pickles Python objects beyond "
            f"tensors and the known training metadata.\n{error}\nIn an environment you trust, extract the weights "
            "with `torch.save(torch.load(path, weights_only=False)['state_dict' or 'model'], 'weights.pt')` and "
            "convert that file."
        ) from error
    except (EOFError, IndexError, RuntimeError, ValueError, KeyError, UnicodeDecodeError, OSError) as error:
        # What torch.load raises on bytes that are not (all of) a torch.save file.
        raise _not_a_checkpoint(path, error) from error
    if not isinstance(checkpoint, dict):
        # ValueError, as for every bad input of the converters (the file is the input).
        raise ValueError(f"Checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a dict of weights.")  # noqa: TRY004
    return checkpoint


def _not_a_checkpoint(path, error: BaseException) -> ValueError:
    return ValueError(
        f"{str(path)!r} is not a readable PyTorch checkpoint (truncated, corrupted, or not written by torch.save): "
        f"{type(error).__name__}: {error}. Download the official file again."
    )


def check_finite_weights(state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights with NaN or infinite values, naming the tensors: a converted model must not hide them."""
    bad = [
        key for key, tensor in state_dict.items()
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        shown = bad[:10] + ([f"... {len(bad) - 10} more"] if len(bad) > 10 else [])
        raise ValueError(
            f"The {source} checkpoint has NaN or infinite values in {len(bad)} tensor(s): {shown}. The training run "
            "that wrote it diverged or the file is corrupted; convert an earlier checkpoint."
        )


def extract_state_dict(checkpoint: dict, weights_key: str, source: str) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint: ``checkpoint[weights_key]``, or the checkpoint itself if it is a bare state dict."""
    if weights_key in checkpoint and isinstance(checkpoint[weights_key], dict):
        state_dict = checkpoint[weights_key]
    elif checkpoint and all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        state_dict = checkpoint
    else:
        raise ValueError(
            f"This does not look like a {source} checkpoint: no {weights_key!r} entry and not a bare state dict "
            f"(top-level keys: {sorted(checkpoint)[:10]})."
        )
    return dict(state_dict)


def rename_state_dict(
    state_dict: dict[str, torch.Tensor], rules: Sequence[RenameRule], dropped: Iterable[str]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Apply the first fully matching rule to every key; returns (renamed, official keys no rule matched)."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    dropped = [re.compile(pattern) for pattern in dropped]
    renamed, unmatched = {}, []
    for key, tensor in state_dict.items():
        if any(pattern.fullmatch(key) for pattern in dropped):
            continue
        for pattern, replacement in compiled:
            match = pattern.fullmatch(key)
            if match:
                new_key = replacement(match) if callable(replacement) else match.expand(replacement)
                renamed[new_key] = tensor
                break
        else:
            unmatched.append(key)
    return renamed, unmatched


def load_converted_weights(model: torch.nn.Module, renamed: dict[str, torch.Tensor], unmatched: list[str], source: str) -> None:
    """Load ``renamed`` into ``model`` after checking that keys and shapes agree exactly."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    mismatched = sorted(
        f"{key}: checkpoint {tuple(renamed[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(expected) & set(renamed)
        if renamed[key].shape != expected[key].shape
    )
    problems = []
    if unmatched:
        problems.append(f"official keys that match no known {source} weight: {unmatched}")
    if unexpected:
        problems.append(f"converted keys the model does not have (architecture differs): {unexpected}")
    if missing:
        problems.append(f"model weights absent from the checkpoint: {missing}")
    if mismatched:
        problems.append(f"shape mismatches: {mismatched}")
    if problems:
        raise ValueError(
            f"The checkpoint does not match the {source} architecture of the given config:\n- " + "\n- ".join(problems)
        )
    check_finite_weights(renamed, source)
    model.load_state_dict(renamed, strict=True)


def save_converted(model, out_dir: str | os.PathLike | None) -> None:
    """The one save step of every converter: ``save_pretrained`` into ``out_dir`` (nothing when None).

    A tokenizer (a config with ``image_size``) also gets its ``VQImageProcessor``, so the Auto
    classes load the folder; the GPT has no image processor.
    """
    if out_dir is None:
        return
    model.save_pretrained(out_dir)
    config = model.config
    if hasattr(config, "image_size"):
        VQImageProcessor(size=config.image_size, num_channels=config.num_channels).save_pretrained(out_dir)


def count_indexed(state_dict: dict[str, torch.Tensor], prefix_pattern: str) -> int:
    """Number of consecutive indices ``i`` for which some key starts with ``prefix_pattern.format(i)``."""
    count = 0
    while any(key.startswith(prefix_pattern.format(count)) for key in state_dict):
        count += 1
    return count


def require_keys(state_dict: dict[str, torch.Tensor], keys: Sequence[str], source: str) -> None:
    absent = [key for key in keys if key not in state_dict]
    if absent:
        raise ValueError(
            f"Cannot infer the {source} architecture: the checkpoint lacks {absent}. Is it a {source} checkpoint? "
            "Pass an explicit preset or config otherwise."
        )


def resolve_config(
    presets: dict, preset: str | None, config, infer: Callable[[int], object], image_size: int, source: str
):
    """An explicit config wins (its own ``image_size``), then a named preset, then the architecture
    inferred from the weights; the last two are built for ``image_size``."""
    if config is not None and preset is not None:
        raise ValueError("Pass either config or preset, not both.")
    if config is not None:
        return config
    if preset is not None:
        if preset not in presets:
            raise ValueError(f"Unknown {source} preset {preset!r}; choose one of {sorted(presets)}.")
        return presets[preset](image_size=image_size)
    return infer(image_size)
