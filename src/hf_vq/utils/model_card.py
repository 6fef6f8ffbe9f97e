"""The hf_vq model card of a tokenizer, rendered from plain records (no model, no files).

``render_tokenizer_card`` fills the packaged template ``hf_vq/model_cards/<model_type>.md`` when
the model has its own (``vqkd.md``: its decoder predicts teacher features), else ``tokenizer.md``,
from the model's config dict, its class name and size, the training record
(``train_config.json``) and the evaluation metrics. It lives below the models so that
``model.push_to_hub`` can write the card without importing the evaluation or hub layers.
"""

from pathlib import Path

from .metric_tables import metrics_markdown

MODEL_CARDS_DIR = Path(__file__).resolve().parent.parent / "model_cards"
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


def _template_name(model_type) -> str:
    """The model type's own card template if there is one, else the generic tokenizer card."""
    return model_type if model_type and (MODEL_CARDS_DIR / f"{model_type}.md").is_file() else "tokenizer"


def render_tokenizer_card(
    config: dict,
    repo_id: str,
    model_class: str,
    num_parameters: int,
    downsample_factor: int | None = None,
    train_config: dict | None = None,
    metrics: dict | None = None,
    tags: list | None = None,
):
    """The card (a ``huggingface_hub.ModelCard``) of a tokenizer described by these records."""
    from huggingface_hub import ModelCard, ModelCardData

    train_config, metrics = train_config or {}, metrics or {}
    image_size = int(config.get("image_size", 0))
    grid = image_size // downsample_factor if downsample_factor else None
    training_data, train_steps, training_summary = _describe_training(train_config, metrics)
    reference = metrics.get("rfid_reference")
    card_tags = ["hf_vq", "image-tokenizer", "vector-quantization", config.get("model_type", "tokenizer")]
    card_tags += [tag for tag in tags or [] if tag not in card_tags]
    card_data = ModelCardData(
        library_name="hf_vq", license="apache-2.0", tags=card_tags, model_name=repo_id.split("/")[-1]
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(model_card_template_path(_template_name(config.get("model_type")))),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        model_type=config.get("model_type"),
        model_class=model_class,
        image_size=image_size,
        downsample_factor=downsample_factor or "-",
        num_tokens=grid * grid if grid else "its",
        token_layout=f"{grid}x{grid} tokens" if grid else "tokens",
        codebook_size=config.get("codebook_size"),
        num_parameters=f"{num_parameters:,}",
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


__all__ = ["CONFIG_FIELDS_NOT_SUMMARISED", "MODEL_CARDS_DIR", "model_card_template_path", "render_tokenizer_card"]
