"""VQ-KD configuration (BEiT v2, Peng et al. 2022, "Masked Image Modeling with Vector-Quantized Visual
Tokenizers", microsoft/unilm ``beit2/modeling_vqkd.py``)."""

from huggingface_hub.dataclasses import strict

from ..configuration_base import VQTokenizerConfig, check_positive

# hf_vq.modules.teachers.CLIP_FEATURES (spelled out: a config imports no torch); DINO teachers give
# "last_hidden_state" only, which FrozenTeacher checks when it is loaded.
TEACHER_FEATURES = ("projected", "post_layernorm", "last_hidden_state")


@strict
class VQKDConfig(VQTokenizerConfig):
    """VQ-KD: a ViT encoder, a Linear-Tanh-Linear head down to ``codebook_dim``, a codebook of
    l2-normalised codes (k-means init, normalised EMA updates), and a small ViT decoder whose
    Linear-Tanh-Linear head predicts the patch features of a frozen teacher (CLIP or DINO).

    Defaults: ``vqkd_encoder_base_decoder_1x768x12_clip``. Official names in brackets.

    Args:
        image_size: image side [``img_size``] (224). The encoder and decoder have learned positions
            for this grid, so the model runs at this size only.
        patch_size: encoder patch side (16); tokens are (image_size / patch_size)^2.
        encoder_hidden_size, encoder_num_layers, encoder_num_heads: encoder ViT (768, 12, 12).
        decoder_hidden_size, decoder_num_layers, decoder_num_heads: decoder ViT (768, 1 or 3, 12);
            its patch embedding is a 1x1 conv over the code grid [``decoder_config``].
        mlp_ratio: MLP width / ViT width (4).
        layer_norm_eps: LayerNorm epsilon of both ViTs (1e-6).
        codebook_size, codebook_dim: codes and their size [``n_code`` 8192, ``code_dim`` 32].
        commitment_beta: weight of ``mean((z - sg(q))^2)`` on unit vectors [``beta`` = 1.0].
        ema_decay: decay of the normalised EMA codebook update [``decay``, 0.99].
        kmeans_init: initialise the codebook by spherical k-means (10 iterations) on the first
            training batch [``quantize_kmeans_init``].
        teacher_name_or_path: the frozen teacher, loaded through transformers when training
            (``openai/clip-vit-base-patch16``, ``facebook/dino-vitb16`` or a local folder). Never
            saved inside this model's weights.
        teacher_features: which teacher features are the target: ``"projected"`` for CLIP
            (``encode_image(return_all_tokens=True) @ proj``, 512-d), ``"last_hidden_state"``
            for DINO (the final-LayerNorm patch tokens, 768-d); see ``hf_vq.modules.teachers``.
        teacher_feature_dim: size of the teacher features the decoder predicts [``decoder_out_dim``].
    """

    model_type = "vqkd"

    image_size: int = 224
    patch_size: int = 16
    encoder_hidden_size: int = 768
    encoder_num_layers: int = 12
    encoder_num_heads: int = 12
    decoder_hidden_size: int = 768
    decoder_num_layers: int = 1
    decoder_num_heads: int = 12
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-6
    codebook_size: int = 8192
    codebook_dim: int = 32
    commitment_beta: float = 1.0
    ema_decay: float = 0.99
    kmeans_init: bool = True
    teacher_name_or_path: str = "openai/clip-vit-base-patch16"
    teacher_features: str = "projected"
    teacher_feature_dim: int = 512

    def __post_init__(self, **kwargs):
        check_positive(
            self, "patch_size", "encoder_hidden_size", "encoder_num_layers", "encoder_num_heads", "decoder_hidden_size",
            "decoder_num_layers", "decoder_num_heads", "teacher_feature_dim",
        )
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}.")
        for prefix in ("encoder", "decoder"):
            width, heads = getattr(self, f"{prefix}_hidden_size"), getattr(self, f"{prefix}_num_heads")
            if width % heads:
                raise ValueError(f"{prefix}_hidden_size {width} is not divisible by {prefix}_num_heads {heads}.")
        if self.teacher_features not in TEACHER_FEATURES:
            raise ValueError(f"Unknown teacher_features {self.teacher_features!r}; choose one of {TEACHER_FEATURES}.")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) (BEiT v2 uses 0.99); got {self.ema_decay!r}.")
        super().__post_init__(**kwargs)

    @property
    def grid_size(self) -> int:
        """Tokens per side."""
        return self.image_size // self.patch_size

    # -- the released tokenizers (beit2/TOKENIZER.md) ----------------------------------------
    @classmethod
    def base_decoder_1x768x12_clip(cls, **kwargs) -> "VQKDConfig":
        """``vqkd_encoder_base_decoder_1x768x12_clip``: 1-layer decoder predicting CLIP ViT-B/16 features."""
        return cls(**kwargs)

    @classmethod
    def base_decoder_3x768x12_clip(cls, **kwargs) -> "VQKDConfig":
        """``vqkd_encoder_base_decoder_3x768x12_clip``: 3-layer decoder predicting CLIP ViT-B/16 features."""
        return cls(**{"decoder_num_layers": 3, **kwargs})

    @classmethod
    def base_decoder_1x768x12_dino(cls, **kwargs) -> "VQKDConfig":
        """``vqkd_encoder_base_decoder_1x768x12_dino``: 1-layer decoder predicting DINO ViT-B/16 features."""
        fields = {"teacher_name_or_path": "facebook/dino-vitb16", "teacher_features": "last_hidden_state",
                  "teacher_feature_dim": 768}
        return cls(**{**fields, **kwargs})


__all__ = ["TEACHER_FEATURES", "VQKDConfig"]
