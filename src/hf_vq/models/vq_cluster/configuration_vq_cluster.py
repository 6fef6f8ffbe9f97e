"""Cluster tokenizer configuration (IU-tokenizer paper, NeurIPS 2024, magic-research/vector_quantization ``configs/cluster/``)."""

from huggingface_hub.dataclasses import strict

from ...quantizers import ANCHORS, DISTANCES
from ..configuration_base import VQTokenizerConfig, check_positive
from ..configuration_pixel_decoder import pixel_decoder_config

TEACHER_FEATURES = ("post_layernorm", "projected", "last_hidden_state")


@strict
class VQClusterConfig(VQTokenizerConfig):
    """Cluster: a frozen teacher's patch features quantised by a codebook learned by online clustering.

    The official ``configs/cluster/clip_8192_imagenet_ddp.py``: CLIP ViT-B/16 patch tokens after
    ``ln_post`` without the projection (768-d, a 16 x 16 grid at 256 pixels), an 8192 x 768
    codebook drawn from U(-1/K, 1/K), cosine search, raw codes out, the codebook loss
    ``mse(code, sg(feature))`` and CVQ-VAE's nearest-feature anchors; only the codebook trains.

    Args:
        image_size: the resolution the teacher sees (256); ``encode`` takes exactly this size.
        teacher: the frozen teacher, a transformers CLIP / DINO (ViT) / DINOv2 checkpoint by Hub name or
            local folder; loaded when the model is built or loaded, never saved in its weights.
        teacher_features: "post_layernorm" (official), "projected" (CLIP's visual projection) or
            "last_hidden_state" (the only choice for DINO / DINOv2).
        teacher_patch_size: the teacher's patch size = the downsampling factor (checked when it loads).
        codebook_size: number of codes (8192).
        codebook_dim: the teacher's feature size (768; checked when it loads).
        distance: "cosine" (official: search by cosine, output the raw code) or "euclidean".
        anchor: CVQ anchors for rarely used codes: "closest" (official NearestAnchor), "random", "probabilistic".
        usage_decay: EMA decay of the code usage that drives the anchor updates (0.99).
        pixel_decoder: stage 2: LlamaGen decoder fields (see ``configuration_pixel_decoder``); None in stage 1.
        reconstruction_loss: stage 2's pixel loss, "mse" (LlamaGen's recipe).
    """

    model_type = "vq_cluster"

    image_size: int = 256
    teacher: str = "openai/clip-vit-base-patch16"
    teacher_features: str = "post_layernorm"
    teacher_patch_size: int = 16
    codebook_size: int = 8192
    codebook_dim: int = 768
    distance: str = "cosine"
    anchor: str = "closest"
    usage_decay: float = 0.99
    pixel_decoder: dict | None = None
    reconstruction_loss: str = "mse"

    def __post_init__(self, **kwargs):
        if self.teacher_features not in TEACHER_FEATURES:
            raise ValueError(f"Unknown teacher_features {self.teacher_features!r}; choose one of {TEACHER_FEATURES}.")
        if self.distance not in DISTANCES:
            raise ValueError(f"Unknown distance {self.distance!r}; choose one of {DISTANCES}.")
        if self.anchor not in ANCHORS:
            raise ValueError(f"Unknown anchor {self.anchor!r}; choose one of {ANCHORS}.")
        if not self.teacher:
            raise ValueError("teacher must name the frozen teacher (a Hub name such as openai/clip-vit-base-patch16 "
                             "or a local folder); hf_vq never substitutes a random one.")
        super().__post_init__(**kwargs)
        check_positive(self, "teacher_patch_size")
        if self.image_size % self.teacher_patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of teacher_patch_size {self.teacher_patch_size}.")
        if self.pixel_decoder is not None:
            pixel_decoder_config(self.pixel_decoder, self.image_size, self.num_channels, self.teacher_patch_size)

    @property
    def grid_size(self) -> int:
        """Codes per side: image_size / teacher_patch_size."""
        return self.image_size // self.teacher_patch_size


__all__ = ["TEACHER_FEATURES", "VQClusterConfig"]
