"""Model cards and uploads of saved tokenizer folders to the Hugging Face Hub.

``push_to_hub(model_dir, repo_id)`` = ``prepare_push_folder`` (write README.md from the
packaged card template ``hf_vq/model_cards/tokenizer.md``, make sure the image
processor is there, list the files) + one upload commit. The card is rendered by
``hf_vq.utils.model_card`` from the folder's records (config, training record, metrics);
``model.push_to_hub`` uses the same renderer for an in-memory model.
"""

import fnmatch
import json
from pathlib import Path

from .evaluation.benchmark import METRICS_FILES
from .utils.hub_upload import upload_folder_to_hub
from .utils.model_card import CONFIG_FIELDS_NOT_SUMMARISED, MODEL_CARDS_DIR, model_card_template_path, render_tokenizer_card

# Not part of a model repository: training checkpoints, caches, hidden files.
IGNORED_PATTERNS = ("checkpoint-*", "checkpoints", ".*", "__pycache__", "*.pyc", "logs", "runs")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def render_model_card(model_dir, repo_id: str | None = None):
    """The card of the tokenizer saved in ``model_dir`` (config, training record, metrics)."""
    from transformers import AutoModel

    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    if not config:
        raise FileNotFoundError(f"{model_dir} has no config.json: save the model with save_pretrained first.")
    model = AutoModel.from_pretrained(model_dir)
    metrics = next((_read_json(model_dir / name) for name in METRICS_FILES if (model_dir / name).is_file()), {})
    return render_tokenizer_card(
        config, repo_id or model_dir.name, type(model).__name__, model.num_parameters(),
        downsample_factor=getattr(model, "downsample_factor", None),
        train_config=_read_json(model_dir / "train_config.json"), metrics=metrics,
    )


def _ignored(relative: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in IGNORED_PATTERNS)


def prepare_push_folder(model_dir, repo_id: str) -> list:
    """Write README.md (the card) and the image processor into ``model_dir``; return the files to upload."""
    from .processing import VQImageProcessor

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"Model folder {model_dir} does not exist: give the folder the model was saved to.")
    weights = list(model_dir.glob("*.safetensors")) + list(model_dir.glob("*.bin"))
    if not (model_dir / "config.json").is_file() or not weights:
        raise FileNotFoundError(
            f"{model_dir} has no saved model (config.json + weights): save it with model.save_pretrained first."
        )
    if not (model_dir / "preprocessor_config.json").is_file():
        # A tokenizer on the Hub needs its processor so AutoImageProcessor reproduces the eval crop.
        config = _read_json(model_dir / "config.json")
        VQImageProcessor(size=config.get("image_size", 64), num_channels=config.get("num_channels", 3)).save_pretrained(model_dir)
    render_model_card(model_dir, repo_id).save(model_dir / "README.md")
    return sorted(
        str(path.relative_to(model_dir))
        for path in model_dir.rglob("*")
        if path.is_file() and not _ignored(path.relative_to(model_dir))
    )


def push_to_hub(
    model_dir,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token=None,
    revision: str | None = None,
    create_pr: bool = False,
):
    """Upload the model, its image processor and its card from ``model_dir`` to ``repo_id`` (one commit)."""
    files = prepare_push_folder(model_dir, repo_id)
    return upload_folder_to_hub(
        model_dir, repo_id, allow_patterns=files,
        commit_message=commit_message or "Upload hf_vq tokenizer, image processor and model card",
        commit_description=commit_description, private=private, token=token, revision=revision, create_pr=create_pr,
    )


def push_model_to_hub(model, repo_id: str, image_processor=None, metrics: dict | None = None, **kwargs):
    """``model.push_to_hub(repo_id, image_processor=..., metrics=..., **kwargs)`` (kept for existing callers)."""
    return model.push_to_hub(repo_id, image_processor=image_processor, metrics=metrics, **kwargs)


__all__ = [
    "CONFIG_FIELDS_NOT_SUMMARISED",
    "IGNORED_PATTERNS",
    "MODEL_CARDS_DIR",
    "model_card_template_path",
    "prepare_push_folder",
    "push_model_to_hub",
    "push_to_hub",
    "render_model_card",
]
