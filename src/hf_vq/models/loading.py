"""Strict loading for every hf_vq model: the weights must fit the config exactly.

transformers only *reports* missing or unexpected weights (and initialises the missing
ones at random); for hf_vq models that report is an error naming the keys. ``save_pretrained``
also records, in the safetensors header (``__metadata__["hf_vq_config"]``), the config the
weights were saved with, so that loading can (1) name the config fields that differ when the
weights do not fit, and (2) refuse a config whose ``function_config_fields`` (``l2_norm``,
``levels``, ``distance``, the GPT's heads and RoPE ...) changed: they change what the same
weights compute without changing a single shape.
"""

import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

METADATA_KEY = "hf_vq_config"
# Bookkeeping fields that never describe the architecture.
_IGNORED_FIELDS = {
    "transformers_version", "_name_or_path", "name_or_path", "architectures", "dtype", "torch_dtype",
    "_commit_hash", "_attn_implementation_autoset", "auto_map", "output_hidden_states", "output_attentions",
    "return_dict", "use_cache", "id2label", "label2id", "problem_type", "tie_word_embeddings",
    "chunk_size_feed_forward", "is_encoder_decoder",
}


def config_record(config) -> dict:
    return {key: value for key, value in config.to_dict().items() if key not in _IGNORED_FIELDS}


def _read_header(path: Path) -> tuple[int, dict]:
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path} is not a safetensors file: it has only {len(prefix)} bytes.")
        (length,) = struct.unpack("<Q", prefix)
        if length > os.path.getsize(path) - 8:
            raise ValueError(f"{path} is truncated or not a safetensors file (its header claims {length} bytes).")
        try:
            return length, json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a safetensors file (unreadable header: {error}).") from error


def write_config_record(path: Path, record: dict) -> None:
    """Put ``record`` into the header metadata of the safetensors file ``path`` (rewritten atomically).

    Tensor offsets are relative to the end of the header, so only the header changes.
    """
    length, header = _read_header(path)
    header.setdefault("__metadata__", {})[METADATA_KEY] = json.dumps(record, sort_keys=True)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out, open(path, "rb") as source:
            out.write(struct.pack("<Q", len(encoded)) + encoded)
            source.seek(8 + length)
            shutil.copyfileobj(source, out, 16 * 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def weight_files(folder: Path) -> list:
    return sorted(folder.glob("*.safetensors"))


def read_config_record(folder: Path) -> dict | None:
    """The config the weights in ``folder`` were saved with; None when unknown (older save, other writer)."""
    for path in weight_files(folder):
        metadata = _read_header(path)[1].get("__metadata__") or {}
        if METADATA_KEY in metadata:
            return json.loads(metadata[METADATA_KEY])
    return None


def local_folder(pretrained_model_name_or_path, kwargs: dict) -> Path | None:
    """The local folder of the weights: a directory, or the Hub cache folder of a downloaded repository."""
    path = Path(str(pretrained_model_name_or_path))
    if path.is_dir():
        subfolder = kwargs.get("subfolder") or ""
        return path / subfolder
    try:
        from transformers.utils import cached_file

        resolved = cached_file(
            str(pretrained_model_name_or_path), "config.json", subfolder=kwargs.get("subfolder") or "",
            revision=kwargs.get("revision"), cache_dir=kwargs.get("cache_dir"), local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
        )
    except Exception:  # not in the cache: nothing to compare against
        return None
    return Path(resolved).parent if resolved else None


def differing_fields(saved: dict | None, current: dict) -> dict:
    if saved is None:
        return {}
    keys = (set(saved) | set(current)) - _IGNORED_FIELDS
    return {key: (saved.get(key), current.get(key)) for key in sorted(keys) if saved.get(key) != current.get(key)}


def describe(differences: dict) -> str:
    return ", ".join(f"{key} = {current!r} (the weights were saved with {saved!r})" for key, (saved, current) in differences.items())


def check_loaded(model, info: dict, folder: Path | None) -> None:
    """Raise a ValueError when the weights did not fit the config, or a function-changing field was edited."""
    name = type(model).__name__
    saved = read_config_record(folder) if folder is not None else None
    differences = differing_fields(saved, config_record(model.config))
    problems = []
    if info.get("missing_keys"):
        problems.append(f"weights the model needs but the checkpoint lacks: {sorted(info['missing_keys'])}")
    if info.get("unexpected_keys"):
        problems.append(f"weights in the checkpoint the model does not have: {sorted(info['unexpected_keys'])}")
    if info.get("mismatched_keys"):
        shapes = sorted(f"{key}: checkpoint {tuple(a)} vs model {tuple(b)}" for key, a, b in info["mismatched_keys"])
        problems.append(f"shape mismatches: {shapes}")
    if problems:
        if differences:
            hint = f"config.json differs from the config the weights were saved with: {describe(differences)}. Restore it."
        else:
            hint = ("Was config.json edited (e.g. num_res_blocks, channel_multipliers, attn_resolutions, codebook_dim)? "
                    "It must describe the architecture the weights were trained with.")
        raise ValueError(f"The weights in {folder or 'the checkpoint'} do not fit {name}: " + "; ".join(problems) + ". " + hint)
    changed = {key: value for key, value in differences.items() if key in getattr(model, "function_config_fields", ())}
    if changed:
        raise ValueError(
            f"config.json of {folder} sets {describe(changed)}. These fields change what the same weights compute, "
            f"so {name} would load without an error and give other outputs: restore the saved values, or train a new "
            "model with the new setting."
        )


def _mismatch_message(name: str, folder: Path | None, kwargs: dict) -> str:
    message = f"The weights in {folder or 'the checkpoint'} have other shapes than {name} built from its config.json"
    saved = read_config_record(folder) if folder is not None else None
    current_path = folder / "config.json" if folder is not None else None
    if saved is not None and current_path is not None and current_path.is_file():
        current = {key: value for key, value in json.loads(current_path.read_text()).items() if key not in _IGNORED_FIELDS}
        current.update({key: value for key, value in kwargs.items() if key in saved})
        differences = differing_fields(saved, current)
        if differences:
            return f"{message}: config.json differs from the config they were saved with: {describe(differences)}. Restore it."
    return f"{message} (see the report above). Was config.json edited? It must describe the architecture of the weights."


class StrictLoadingMixin:
    """``from_pretrained`` that refuses weights that do not fit, ``save_pretrained`` that records the config."""

    #: config fields that change the function of the same weights (checked against the saved record).
    function_config_fields: tuple = ()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        return_info = kwargs.pop("output_loading_info", False)
        folder = local_folder(pretrained_model_name_or_path, kwargs)
        if folder is not None:
            for path in weight_files(folder):
                try:
                    _read_header(path)
                except ValueError as error:
                    raise ValueError(f"Cannot load {cls.__name__}: {error} Save the model again or download it again.") from error
        try:
            model, info = super().from_pretrained(pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs)
        except Exception as error:
            if type(error).__name__ == "SafetensorError" or "safetensors" in str(error).lower() and "header" in str(error).lower():
                files = ", ".join(str(path) for path in weight_files(folder)) if folder else str(pretrained_model_name_or_path)
                raise ValueError(f"Cannot read the weights of {cls.__name__} in {files}: {error}. The file is truncated "
                                 "or corrupted: save or download it again.") from error
            if isinstance(error, RuntimeError) and "ignore_mismatched_sizes" in str(error):
                raise ValueError(_mismatch_message(cls.__name__, folder, kwargs)) from error
            raise
        check_loaded(model, info, folder)
        return (model, info) if return_info else model

    def save_pretrained(self, save_directory, *args, **kwargs):
        result = super().save_pretrained(save_directory, *args, **kwargs)
        record = config_record(self.config)
        for path in weight_files(Path(save_directory)):
            write_config_record(path, record)
        return result


__all__ = ["StrictLoadingMixin", "check_loaded", "read_config_record", "write_config_record"]
