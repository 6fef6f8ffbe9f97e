"""Frozen pretrained vision encoders ("teachers") whose patch features guide a tokenizer.

VQ-KD regresses them, Cluster quantises them, VQGAN-LC builds its codebook from them. They
are loaded through transformers by Hub name or local path, never vendored and never
replaced by a random model: a checkpoint that lacks a weight the teacher needs is an error.

* ``clip``: ``CLIPVisionModel`` / ``CLIPVisionModelWithProjection`` (a full ``CLIPModel``
  checkpoint such as ``openai/clip-vit-large-patch14`` loads too). ``features``:
  ``"projected"`` = ``visual_projection(post_layernorm(patch tokens))`` (BEiT v2's
  ``encode_image(return_all_tokens=True) @ proj``, VQGAN-LC's codebook features),
  ``"post_layernorm"`` = ``post_layernorm(patch tokens)``, ``"last_hidden_state"`` = the raw
  patch tokens of the last layer.
* ``dino``: ``ViTModel`` (``facebook/dino-vitb16``); ``dinov2``: ``Dinov2Model``. Their
  ``last_hidden_state`` already went through the final LayerNorm (what DINO's
  ``forward(return_patch_tokens=True)`` returns); the only ``features`` is ``"last_hidden_state"``.

Input: pixels in [-1, 1], as everywhere in hf_vq. Inside, they are mapped to [0, 1], resized
to the protocol resolution ``image_size`` when they differ from it (bicubic, antialiased) and
normalised with the teacher's own mean and std (OpenAI CLIP's for CLIP, ImageNet's for DINO
and DINOv2). Output: (batch, num_patches, feature_dim) patch features, class token dropped.

The teacher is frozen: no parameter requires grad, it stays in eval mode whatever
``train()`` is called with, and it runs under ``torch.no_grad()``. Models keep it outside
their state dict (see ``hf_vq.models.vqkd``), so it is never saved inside a tokenizer.
"""

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TEACHER_KINDS = ("clip", "dino", "dinov2")
# transformers ``model_type`` of a checkpoint -> teacher kind.
_KIND_OF_MODEL_TYPE = {"clip": "clip", "clip_vision_model": "clip", "vit": "dino", "dinov2": "dinov2"}
CLIP_FEATURES = ("projected", "post_layernorm", "last_hidden_state")
# DINOv2 checkpoints record 518 (their last training stage); the tokenizer protocols run them at 224.
DINOV2_DEFAULT_IMAGE_SIZE = 224


def _load_config(name_or_path: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        where = "local folder" if os.path.isdir(str(name_or_path)) else "Hub name (or local folder)"
        raise ValueError(
            f"Could not load the teacher config from {name_or_path!r} ({where}): {error}\n"
            "Pass a transformers CLIP, ViT (DINO) or DINOv2 checkpoint, e.g. openai/clip-vit-base-patch16, "
            "facebook/dino-vitb16, facebook/dinov2-base, or a folder saved with save_pretrained. "
            "Offline, download it first (huggingface-cli download NAME) and pass the folder."
        ) from error


def _vision_config(config):
    """The vision sub-config of a full CLIP config, else the config itself."""
    return getattr(config, "vision_config", None) or config


class FrozenTeacher(nn.Module):
    """A frozen vision encoder returning patch features (batch, num_patches, feature_dim).

    Build it with :meth:`from_pretrained`; the constructor takes an already loaded backbone.

    Args:
        backbone: a transformers ``CLIPVisionModel(WithProjection)``, ``ViTModel`` or ``Dinov2Model``.
        kind: "clip", "dino" or "dinov2".
        image_size: the protocol resolution the teacher sees.
        features: which features (see the module docstring).
        mean, std: the teacher's input normalisation (on [0, 1] pixels).
        name_or_path: where it came from (recorded in configs).
    """

    def __init__(self, backbone: nn.Module, kind: str, image_size: int, features: str, mean, std, name_or_path: str = ""):
        super().__init__()
        if kind not in TEACHER_KINDS:
            raise ValueError(f"Unknown teacher kind {kind!r}; choose one of {TEACHER_KINDS}.")
        allowed = CLIP_FEATURES if kind == "clip" else ("last_hidden_state",)
        if features not in allowed:
            raise ValueError(f"A {kind} teacher gives features {allowed}; got {features!r}.")
        if features == "projected" and not hasattr(backbone, "visual_projection"):
            raise ValueError("features='projected' needs a CLIPVisionModelWithProjection (it has visual_projection).")
        config = backbone.config
        self.backbone = backbone
        self.kind = kind
        self.features = features
        self.name_or_path = str(name_or_path)
        self.image_size = int(image_size)
        self.patch_size = int(config.patch_size)
        if self.image_size % self.patch_size:
            raise ValueError(f"Teacher image_size {self.image_size} is not a multiple of its patch size {self.patch_size}.")
        self.native_image_size = int(config.image_size)
        self.feature_dim = int(config.projection_dim if features == "projected" else config.hidden_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, name_or_path: str, features: str | None = None, image_size: int | None = None, dtype=None
    ) -> "FrozenTeacher":
        """Load a CLIP / DINO (ViT) / DINOv2 teacher by Hub name or local path.

        ``features`` defaults to ``"projected"`` for CLIP and ``"last_hidden_state"`` otherwise;
        ``image_size`` to the checkpoint's resolution (224 for DINOv2, see ``DINOV2_DEFAULT_IMAGE_SIZE``).
        Raises a ValueError when the checkpoint is not one of these or lacks a needed weight.
        """
        from transformers import CLIPVisionModel, CLIPVisionModelWithProjection, Dinov2Model, ViTModel
        from transformers.utils import logging as transformers_logging

        config = _load_config(name_or_path)
        kind = _KIND_OF_MODEL_TYPE.get(config.model_type)
        if kind is None:
            raise ValueError(
                f"{name_or_path!r} is a {config.model_type!r} checkpoint; teachers are CLIP (clip, clip_vision_model), "
                "DINO (vit) or DINOv2 (dinov2) models."
            )
        features = features or ("projected" if kind == "clip" else "last_hidden_state")
        if kind == "clip":
            model_class = CLIPVisionModelWithProjection if features == "projected" else CLIPVisionModel
            vision_config = _vision_config(config)
            # A full CLIP config keeps the projection size at its top level; the vision
            # sub-config may carry a stale default.
            if hasattr(config, "vision_config"):
                vision_config.projection_dim = config.projection_dim
            extra = {"config": vision_config}
        elif kind == "dino":
            model_class, extra = ViTModel, {"add_pooling_layer": False}
        else:
            model_class, extra = Dinov2Model, {}
        # A full CLIP checkpoint also holds the text tower: those weights are expected to be unused.
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()
        try:
            backbone, info = model_class.from_pretrained(
                name_or_path, output_loading_info=True, dtype=dtype, **extra
            )
        finally:
            transformers_logging.set_verbosity(verbosity)
        missing = sorted(info.get("missing_keys", ()))
        mismatched = sorted(str(key) for key in info.get("mismatched_keys", ()))
        if missing or mismatched:
            raise ValueError(
                f"Teacher {name_or_path!r} lacks weights {model_class.__name__} needs (they would be random): "
                f"missing {missing}, mismatched {mismatched}."
                + (" A CLIPVisionModel checkpoint has no visual_projection: use features='post_layernorm' "
                   "or a full CLIP checkpoint." if "visual_projection.weight" in missing else "")
            )
        vision_config = backbone.config
        if image_size is None:
            image_size = DINOV2_DEFAULT_IMAGE_SIZE if kind == "dinov2" else vision_config.image_size
        mean, std = (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD) if kind == "clip" else (IMAGENET_MEAN, IMAGENET_STD)
        return cls(backbone, kind, image_size, features, mean, std, name_or_path=name_or_path)

    # -- frozen -----------------------------------------------------------------------
    def train(self, mode: bool = True) -> "FrozenTeacher":
        """The teacher stays in eval mode (no dropout) whatever its owner does."""
        return super().train(False)

    @property
    def grid_size(self) -> int:
        """Patches per side at ``image_size``."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    # -- features ---------------------------------------------------------------------
    def preprocess(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels -> the teacher's normalised input at ``image_size``."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"Teachers take RGB pixels (batch, 3, height, width) in [-1, 1]; got {tuple(pixel_values.shape)}.")
        images = ((pixel_values.float() + 1) / 2).clamp(0, 1)
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bicubic",
                                   align_corners=False, antialias=True)
        return (images - self.mean) / self.std

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, H, W) in [-1, 1] -> patch features (B, num_patches, feature_dim)."""
        dtype = next(self.backbone.parameters()).dtype
        inputs = self.preprocess(pixel_values).to(dtype)
        kwargs = {}
        if self.kind != "dinov2":  # DINOv2 always interpolates its position embeddings
            kwargs["interpolate_pos_encoding"] = self.image_size != self.native_image_size
        if self.kind == "clip":
            # The inner CLIPVisionModel: its last_hidden_state is before post_layernorm.
            vision = self.backbone.vision_model if self.features == "projected" else self.backbone
            tokens = vision(pixel_values=inputs, **kwargs).last_hidden_state[:, 1:]
            if self.features in ("projected", "post_layernorm"):
                tokens = vision.post_layernorm(tokens)
            if self.features == "projected":
                tokens = self.backbone.visual_projection(tokens)
            return tokens
        return self.backbone(pixel_values=inputs, **kwargs).last_hidden_state[:, 1:]

    def extra_repr(self) -> str:
        return (f"name_or_path={self.name_or_path!r}, kind={self.kind!r}, features={self.features!r}, "
                f"image_size={self.image_size}, feature_dim={self.feature_dim}")


__all__ = ["CLIP_FEATURES", "FrozenTeacher", "TEACHER_KINDS"]
