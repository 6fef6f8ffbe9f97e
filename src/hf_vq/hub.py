"""Model cards and uploads to the Hugging Face Hub.

``push_to_hub(model_dir, repo_id)`` = ``prepare_push_folder`` (write README.md from the
packaged card template ``hf_vq/model_cards/tokenizer.md``, make sure the image
processor is there, list the files) + one ``HfApi.upload_folder`` call. The template is
the only copy: it ships as package data, and ``model_card_template_path()`` finds it.
"""

import fnmatch
import json
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData

from .evaluation.benchmark import METRICS_FILES, metrics_markdown

MODEL_CARDS_DIR = Path(__file__).parent / "model_cards"
# Not part of a model repository: training checkpoints, caches, hidden files.
IGNORED_PATTERNS = ("checkpoint-*", "checkpoints", ".*", "__pycache__", "*.pyc", "logs", "runs")
# Model-config fields that are bookkeeping, not architecture.
CONFIG_FIELDS_NOT_SUMMARISED = {
    "architectures", "transformers_version", "dtype", "torch_dtype", "auto_map", "output_hidden_states",
    "return_dict", "output_attentions", "chunk_size_feed_forward", "problem_type", "id2label", "label2id",
    "tie_word_embeddings", "is_encoder_decoder", "model_type",
}


def model_card_template_path(name: str = "tokenizer") -> Path:
    path = MODEL_CARDS_DIR / f"{name}.md"
    if not path.is_file():
        available = sorted(p.stem for p in MODEL_CARDS_DIR.glob("*.md"))
        raise ValueError(f"No model card template {name!r}; available: {available}.")
    return path


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _describe_training(train_config: dict, metrics: dict):
    data = train_config.get("data") or {}
    training = train_config.get("training") or {}
    if data:
        training_data = f"{data.get('dataset', 'unknown')} at {data.get('image_size', '?')}px (random crop + flip)"
    else:
        training_data = "not recorded (no train_config.json)"
    steps = metrics.get("train_steps") or training.get("max_steps") or "not recorded"
    summary_keys = ("batch_size", "learning_rate", "adam_beta1", "adam_beta2", "weight_decay", "max_grad_norm")
    summary = ", ".join(f"{key} {training[key]}" for key in summary_keys if training.get(key) is not None)
    return training_data, steps, summary


def render_model_card(model_dir, repo_id: str | None = None) -> ModelCard:
    """The card of the tokenizer saved in ``model_dir`` (config, training record, metrics)."""
    from transformers import AutoModel

    import hf_vq  # noqa: F401  (registers the tokenizers with AutoModel)

    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    if not config:
        raise FileNotFoundError(f"{model_dir} has no config.json: save the model with save_pretrained first.")
    model = AutoModel.from_pretrained(model_dir)
    train_config = _read_json(model_dir / "train_config.json")
    metrics = next((_read_json(model_dir / name) for name in METRICS_FILES if (model_dir / name).is_file()), {})
    repo_id = repo_id or model_dir.name
    image_size = int(config.get("image_size", 0))
    downsample = getattr(model, "downsample_factor", None)
    grid = image_size // downsample if downsample else None
    training_data, train_steps, training_summary = _describe_training(train_config, metrics)
    reference = metrics.get("rfid_reference")

    card_data = ModelCardData(
        library_name="hf_vq",
        license="apache-2.0",
        tags=["hf_vq", "image-tokenizer", "vector-quantization", config.get("model_type", "tokenizer")],
        model_name=repo_id.split("/")[-1],
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(model_card_template_path("tokenizer")),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        model_type=config.get("model_type"),
        model_class=type(model).__name__,
        image_size=image_size,
        downsample_factor=downsample or "-",
        num_tokens=grid * grid if grid else "its",
        token_layout=f"{grid}x{grid} tokens" if grid else "tokens",
        codebook_size=config.get("codebook_size"),
        num_parameters=f"{sum(p.numel() for p in model.parameters()):,}",
        config_summary={k: v for k, v in sorted(config.items()) if k not in CONFIG_FIELDS_NOT_SUMMARISED},
        training_data=training_data,
        train_steps=train_steps,
        training_summary=training_summary,
        metrics_table=metrics_markdown(metrics) if metrics else None,
        perplexity=f"{metrics['perplexity']:.2f}" if metrics.get("perplexity") is not None else "-",
        eval_data=metrics.get("eval_data", "not recorded"),
        rfid_reference=f"{reference['description']} ({reference['num_images']} images)" if reference else None,
        rfid_protocol=metrics.get("rfid_protocol", "not recorded"),
        rfid_features=metrics.get("rfid_feature_extractor", "not recorded"),
    )


def _ignored(relative: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in IGNORED_PATTERNS)


def prepare_push_folder(model_dir, repo_id: str) -> list:
    """Write README.md (the card) and the image processor into ``model_dir``; return the files to upload."""
    from .processing import VQImageProcessor

    model_dir = Path(model_dir)
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


def push_to_hub(model_dir, repo_id: str, private: bool | None = None, token=None, commit_message: str | None = None):
    """Upload the model, its image processor and its card from ``model_dir`` to ``repo_id``."""
    files = prepare_push_folder(model_dir, repo_id)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(model_dir),
        allow_patterns=files,
        commit_message=commit_message or "Upload hf_vq tokenizer, image processor and model card",
    )


def push_model_to_hub(model, repo_id: str, image_processor=None, metrics: dict | None = None, **kwargs):
    """Save an in-memory ``model`` (and processor / metrics) to a temporary folder and push it with its card."""
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        if image_processor is not None:
            image_processor.save_pretrained(folder)
        if metrics:
            (Path(folder) / "eval_metrics.json").write_text(json.dumps(metrics, indent=2))
        return push_to_hub(folder, repo_id, **kwargs)
