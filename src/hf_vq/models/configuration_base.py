"""The config fields every hf_vq tokenizer has (no model code: configs load without torch.nn models)."""

from transformers import PreTrainedConfig

RECONSTRUCTION_LOSSES = ("mse", "l1")
# Keys transformers passes to a config's __post_init__ when loading or saving.
_TRANSFORMERS_CONFIG_KEYS = {
    "model_type", "name_or_path", "transformers_version", "torch_dtype", "architectures", "auto_map",
    "_commit_hash", "_attn_implementation_autoset",
} | set(PreTrainedConfig.__dataclass_fields__)


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
        if self.reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"Unknown reconstruction_loss {self.reconstruction_loss!r}; choose one of {RECONSTRUCTION_LOSSES}."
            )
        super().__post_init__(**kwargs)


__all__ = ["RECONSTRUCTION_LOSSES", "VQTokenizerConfig"]
