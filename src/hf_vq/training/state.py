"""Training state as safetensors + JSON: nothing in a checkpoint is a pickle.

Accelerate's ``save_state`` / ``load_state`` pickle the custom objects, the RNG states and
the optimizers (``torch.load(weights_only=False)``): whoever can put a file into a checkpoint
folder could run code on ``--resume``. Here every tensor goes into a ``.safetensors`` file (a
JSON header + raw bytes; loading one cannot run code) and everything else into JSON:

- modules (model, discriminator, LeCam buffers...): ``safetensors.torch.save_model``;
- an optimizer's ``state_dict``: its tensors under ``<name>/state/<param>/<key>`` plus a JSON
  skeleton (the non-tensor state values and the ``param_groups``);
- LR schedulers and the fp16 gradient scaler: their ``state_dict`` as JSON;
- the EMA of the weights: the shadow tensors + its counters as JSON;
- RNG states (Python, NumPy, torch CPU and CUDA): tensors + JSON, one file pair per process.

Every reader raises :class:`CheckpointFormatError` naming the file when it is not what it
should be (a pickle put in its place, truncated bytes, another format).
"""

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model


class CheckpointFormatError(ValueError):
    """A checkpoint file is not the safetensors / JSON file hf_vq wrote; it is refused, never unpickled."""


def _refuse(path: Path, reason) -> CheckpointFormatError:
    return CheckpointFormatError(
        f"{path} is not a valid hf_vq checkpoint file ({reason}). hf_vq checkpoints hold only safetensors and JSON "
        "and are never unpickled; resume from another checkpoint (checkpoint-<step>) or start a new run."
    )


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise _refuse(path, "missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(path, f"not JSON: {error}") from None


def write_json(path, value) -> None:
    Path(path).write_text(json.dumps(value))


def read_tensors(path, device="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise _refuse(path, "missing")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _refuse(path, f"not safetensors: {error}") from None


def write_tensors(path, tensors: dict) -> None:
    save_file({name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}, str(path))


def save_module(module: torch.nn.Module, path) -> None:
    save_model(module, str(path))


def load_module(module: torch.nn.Module, path, device="cpu") -> None:
    """Load weights saved by :func:`save_module`; missing, unexpected or misshapen weights are errors."""
    path = Path(path)
    read_tensors(path)  # refuses anything that is not safetensors before torch sees it
    try:
        load_model(module, str(path), strict=True, device=str(device))
    except (RuntimeError, SafetensorError) as error:
        raise CheckpointFormatError(
            f"{path} does not fit the {type(module).__name__} of this run: {error}. Was the checkpoint written with "
            "another model config?"
        ) from None


# -- optimizers ---------------------------------------------------------------------------------

def flatten_optimizer_state(name: str, state_dict: dict) -> tuple:
    """(tensors, JSON skeleton) of an optimizer ``state_dict``."""
    tensors, skeleton_state = {}, {}
    for param_id, values in state_dict["state"].items():
        skeleton_state[str(param_id)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/state/{param_id}/{key}"] = value
                skeleton_state[str(param_id)][key] = {"tensor": f"{name}/state/{param_id}/{key}"}
            else:
                skeleton_state[str(param_id)][key] = {"value": value}
    groups = [{key: list(value) if isinstance(value, tuple) else value for key, value in group.items()}
              for group in state_dict["param_groups"]]
    return tensors, {"state": skeleton_state, "param_groups": groups}


def unflatten_optimizer_state(skeleton: dict, tensors: dict) -> dict:
    state = {}
    for param_id, values in skeleton["state"].items():
        state[int(param_id)] = {key: tensors[entry["tensor"]] if "tensor" in entry else entry["value"]
                                for key, entry in values.items()}
    groups = [{key: tuple(value) if key == "betas" else value for key, value in group.items()}
              for group in skeleton["param_groups"]]
    return {"state": state, "param_groups": groups}


def json_state(state_dict: dict, what: str) -> dict:
    """A state dict that must be plain JSON (schedulers, the gradient scaler)."""
    try:
        return json.loads(json.dumps(state_dict, default=_json_scalar))
    except TypeError as error:
        raise TypeError(f"The {what} state cannot be stored as JSON ({error}); hf_vq checkpoints hold no pickles.") from None


def _json_scalar(value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- EMA ----------------------------------------------------------------------------------------

def flatten_ema_state(state_dict: dict) -> tuple:
    shadow = state_dict["shadow_params"]
    tensors = {f"shadow/{i}": tensor for i, tensor in enumerate(shadow)}
    scalars = {key: value for key, value in state_dict.items() if key != "shadow_params"}
    return tensors, json_state(scalars, "EMA")


def unflatten_ema_state(scalars: dict, tensors: dict) -> dict:
    return {**scalars, "shadow_params": [tensors[f"shadow/{i}"] for i in range(len(tensors))]}


# -- RNG ----------------------------------------------------------------------------------------

def rng_state() -> tuple:
    """(tensors, JSON) of this process's Python, NumPy, torch and CUDA generators."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda/{index}"] = state
    info = {"python": [version, list(python_state), gauss],
            "numpy": [kind, int(position), int(has_gauss), float(cached_gaussian)]}
    return tensors, info


def set_rng_state(tensors: dict, info: dict) -> None:
    version, python_state, gauss = info["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, position, has_gauss, cached_gaussian = info["numpy"]
    np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda/{i}"] for i in range(sum(name.startswith("cuda/") for name in tensors))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
