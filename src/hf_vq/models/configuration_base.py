"""The config fields every hf_vq tokenizer has (no model code: configs load without torch.nn models)."""

from transformers import PreTrainedConfig

RECONSTRUCTION_LOSSES = ("mse", "l1")
# Keys transformers passes to a config's __post_init__ when loading or saving.
_TRANSFORMERS_CONFIG_KEYS = {
    "model_type", "name_or_path", "transformers_version", "torch_dtype", "architectures", "auto_map",
    "_commit_hash", "_attn_implementation_autoset",
} | set(PreTrainedConfig.__dataclass_fields__)


def check_positive(config, *fields) -> None:
    for field in fields:
        value = getattr(config, field, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{field} must be a positive integer; got {value!r}.")


def check_non_negative(config, *fields) -> None:
    for field in fields:
        value = getattr(config, field, None)
        if value is not None and value < 0:
            raise ValueError(f"{field} must be >= 0 (it weights a loss term); got {value!r}.")


def check_decay(config, *fields) -> None:
    for field in fields:
        value = getattr(config, field, None)
        if value is not None and not 0 <= value < 1:
            raise ValueError(f"{field} must be in [0, 1) (an exponential moving-average decay, e.g. 0.99); got {value!r}.")


class VQTokenizerConfig(PreTrainedConfig):
    """Fields every tokenizer config has. Not registered itself: each tokenizer subclasses it.

    Args:
        image_size: training / evaluation resolution (the image processor crops to it).
        num_channels: image channels.
        codebook_size: number of codes (for FSQ the product of the levels, for LFQ 2**dim).
        reconstruction_loss: "mse" or "l1", used by ``forward``'s loss.
        scaling_factor: latent scaling used by diffusers' latent pipelines.
    """

    image_size: int = 64
    num_channels: int = 3
    codebook_size: int = 512
    reconstruction_loss: str = "mse"
    scaling_factor: float = 1.0

    def __post_init__(self, **kwargs):
        # transformers keeps unknown kwargs as attributes; a typo'd option would then do
        # nothing. Only the bookkeeping keys transformers itself passes are accepted.
        unknown = sorted(key for key in kwargs if key not in _TRANSFORMERS_CONFIG_KEYS)
        if unknown:
            known = sorted(set(self.__dataclass_fields__) - set(PreTrainedConfig.__dataclass_fields__))
            raise ValueError(f"Unknown option(s) {unknown} for {type(self).__name__}; known options: {known}.")
        check_positive(self, "codebook_size", "image_size", "num_channels", "codebook_dim")
        check_non_negative(self, "commitment_beta", "entropy_weight")
        check_decay(self, "ema_decay", "usage_decay")
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"Unknown reconstruction_loss {self.reconstruction_loss!r}; choose one of {RECONSTRUCTION_LOSSES}."
            )
        super().__post_init__(**kwargs)


__all__ = ["RECONSTRUCTION_LOSSES", "VQTokenizerConfig", "check_decay", "check_non_negative", "check_positive"]
