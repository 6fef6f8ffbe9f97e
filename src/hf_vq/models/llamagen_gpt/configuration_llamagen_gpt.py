"""LlamaGen class-conditional GPT configuration and the official model sizes."""


from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

ROPE_TYPES = ("2d", "1d")

# The official class-conditional sizes: (layers, heads, hidden size). The head count
# cannot be read from a checkpoint's weights, which is why conversion names a preset.
LLAMAGEN_GPT_PRESETS = {
    "GPT-B": {"num_hidden_layers": 12, "num_attention_heads": 12, "hidden_size": 768},
    "GPT-L": {"num_hidden_layers": 24, "num_attention_heads": 16, "hidden_size": 1024},
    "GPT-XL": {"num_hidden_layers": 36, "num_attention_heads": 20, "hidden_size": 1280},
    "GPT-XXL": {"num_hidden_layers": 48, "num_attention_heads": 24, "hidden_size": 1536},
    "GPT-3B": {"num_hidden_layers": 24, "num_attention_heads": 32, "hidden_size": 3200},
}


def round_up_to_multiple(value: int, multiple: int) -> int:
    return value if value % multiple == 0 else value + multiple - value % multiple


@strict
class LlamaGenGPTConfig(PreTrainedConfig):
    """Llama-style class-conditional GPT over the indices of any hf_vq tokenizer (LlamaGen c2i).

    The sequence is ``[class token] + image tokens``; position ``i`` predicts image token ``i``.

    Args:
        vocab_size: number of image codes (the tokenizer's ``codebook_size``).
        block_size: image tokens per image (256 for a 16x16 grid, 32 for TiTok-L-32).
        rope_type: "2d" (grid tokenizers, ``block_size`` must be a square) or "1d" (1D tokenizers).
        hidden_size / num_hidden_layers / num_attention_heads: the model size (see ``from_preset``).
        num_key_value_heads: grouped-query attention; None means one key/value head per query head.
        multiple_of / ffn_dim_multiplier: SwiGLU width = multiple_of-rounded (multiplier x 8/3 x hidden).
        rope_base: rotary base (10000).
        norm_eps: RMSNorm epsilon.
        initializer_range: std of the normal init of linears and embeddings (the head starts at 0).
        token_dropout / attention_dropout / residual_dropout / ffn_dropout: dropout probabilities.
        drop_path_rate: stochastic depth, linearly increasing over the layers up to this rate.
        num_classes: number of classes; class id ``num_classes`` is the null class of guidance.
        class_dropout_prob: in training mode, the probability that a label becomes the null class.
    """

    model_type = "llamagen_gpt"

    vocab_size: int = 16384
    block_size: int = 256
    rope_type: str = "2d"
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_key_value_heads: int | None = None
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    initializer_range: float = 0.02
    token_dropout: float = 0.1
    attention_dropout: float = 0.0
    residual_dropout: float = 0.1
    ffn_dropout: float = 0.1
    drop_path_rate: float = 0.0
    num_classes: int = 1000
    class_dropout_prob: float = 0.1

    def __post_init__(self, **kwargs):
        for field in ("vocab_size", "block_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_classes"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive integer; got {value!r}.")
        if self.rope_type not in ROPE_TYPES:
            raise ValueError(f"Unknown rope_type {self.rope_type!r}; choose one of {ROPE_TYPES}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be divisible by num_attention_heads {self.num_attention_heads}."
            )
        if self.num_attention_heads % self.key_value_heads:
            raise ValueError(
                f"num_attention_heads {self.num_attention_heads} must be a multiple of num_key_value_heads "
                f"{self.num_key_value_heads}."
            )
        rotary_dim_divisor = 4 if self.rope_type == "2d" else 2
        if self.head_dim % rotary_dim_divisor:
            raise ValueError(
                f"head_dim {self.head_dim} must be divisible by {rotary_dim_divisor} for {self.rope_type} RoPE."
            )
        if self.rope_type == "2d" and round(self.block_size**0.5) ** 2 != self.block_size:
            raise ValueError(
                f"2D RoPE needs a square grid of tokens; block_size {self.block_size} is not a square. "
                "Use rope_type='1d' for 1D tokenizers."
            )
        super().__post_init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def key_value_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def intermediate_size(self) -> int:
        """SwiGLU hidden width: int(2/3 of 4 x hidden), times the multiplier, rounded up to ``multiple_of``."""
        width = int(2 * (4 * self.hidden_size) / 3)
        if self.ffn_dim_multiplier is not None:
            width = int(self.ffn_dim_multiplier * width)
        return round_up_to_multiple(width, self.multiple_of)

    @property
    def grid_size(self) -> int:
        """Side of the token grid (2D RoPE only)."""
        return round(self.block_size**0.5)

    @property
    def null_class_id(self) -> int:
        return self.num_classes

    @classmethod
    def from_preset(cls, preset: str, **kwargs) -> "LlamaGenGPTConfig":
        """One of ``LLAMAGEN_GPT_PRESETS`` (GPT-B, GPT-L, GPT-XL, GPT-XXL, GPT-3B); kwargs override fields."""
        if preset not in LLAMAGEN_GPT_PRESETS:
            raise ValueError(f"Unknown LlamaGen GPT preset {preset!r}; choose one of {sorted(LLAMAGEN_GPT_PRESETS)}.")
        return cls(**{**LLAMAGEN_GPT_PRESETS[preset], **kwargs})


__all__ = ["LLAMAGEN_GPT_PRESETS", "LlamaGenGPTConfig"]
