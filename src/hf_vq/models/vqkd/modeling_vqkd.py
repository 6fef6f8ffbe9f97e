"""VQ-KD (BEiT v2's tokenizer): ViT encoder -> Linear-Tanh-Linear -> unit-norm codes -> ViT decoder -> teacher features.

Reads top to bottom: the ViT both halves use, the task heads, then the model. Stage 1 of VQ-KD
distils a frozen teacher: its decoder does not give pixels but predictions of the teacher's
patch features, so in stage 1

* ``encode(pixels)`` -> ``.indices`` (B, H/16, W/16) and ``.quantized`` (B, codebook_dim, H/16, W/16)
  (unit-norm codes), like every hf_vq tokenizer;
* ``predict_features(quantized)`` -> the predicted teacher features (B, (H/16) * (W/16),
  teacher_feature_dim), patch tokens in row-major order;
* ``forward(pixels, teacher_features)`` -> loss ``1 - cos(prediction, teacher) + commitment``;
* ``decode`` / ``decode_indices`` refuse: there is no image decoder yet.

Stage 2 (:mod:`hf_vq.models.pixel_decoder`): with ``config.pixel_decoder`` the model holds a
LlamaGen pixel decoder trained behind the frozen encoder and quantizer; then ``decode`` /
``decode_indices`` / ``forward(pixels)`` give images in [-1, 1] like any tokenizer.
The teacher is never part of this model: :meth:`VQKDModel.load_teacher` loads the one its config
names, and the training objective (``hf_vq.training.distillation_objective``) feeds its features.
``hf_vq.convert.vqkd`` maps BEiT v2's released weights onto these module names.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import initialization as init

from ...modules.vit_blocks import ViTBlock
from ...quantizers import KMeansInit, NormalizedEMAUpdate, VectorQuantizer
from ..base import VQModelOutput, VQTokenizerPreTrainedModel, check_pixel_values, reject_unknown_arguments
from ..pixel_decoder import PixelDecoderMixin
from .configuration_vqkd import VQKDConfig


class VQKDVisionTransformer(nn.Module):
    """BEiT's ``VisionTransformer`` as VQ-KD builds it (``use_mean_pooling``, no head): feature map
    (B, C, h * p, w * p) -> patch tokens (B, h * w, width).

    Patch conv -> [class token, patches] + learned positions -> pre-norm blocks -> LayerNorm of
    the patch tokens (the official ``fc_norm``; its ``norm`` is an identity). The official
    attention has ``q_bias`` and ``v_bias`` and no key bias; a key bias adds the same score to
    every key of a query, which the softmax cancels, so the fused ``qkv.bias`` of ``ViTBlock``
    computes the same function (conversion sets its key part to zero).
    """

    def __init__(self, in_channels: int, patch_size: int, grid_size: int, width: int, depth: int, num_heads: int,
                 mlp_ratio: float, layer_norm_eps: float):
        super().__init__()
        self.grid_size = grid_size
        self.patch_embed = nn.Conv2d(in_channels, width, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position_embedding = nn.Parameter(torch.zeros(1, grid_size**2 + 1, width))
        self.blocks = nn.ModuleList(ViTBlock(width, num_heads, mlp_ratio, norm_eps=layer_norm_eps) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(patches.shape[0], -1, -1), patches], dim=1) + self.position_embedding
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 1:])


class TaskHead(nn.Sequential):
    """Linear -> Tanh -> Linear (the official ``encode_task_layer`` / ``decode_task_layer``)."""

    def __init__(self, width: int, out_features: int):
        super().__init__(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, out_features))


def cosine_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of ``1 - cos(prediction, target)`` along the feature dimension."""
    return (1 - (F.normalize(prediction, dim=-1) * F.normalize(target, dim=-1)).sum(-1)).mean()


class VQKDModel(PixelDecoderMixin, VQTokenizerPreTrainedModel):
    config: VQKDConfig
    config_class = VQKDConfig
    # ``decodes_pixels`` (PixelDecoderMixin): False in stage 1 (the decoder predicts teacher features), True in stage 2.
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("encoder_num_heads", "decoder_num_heads", "layer_norm_eps")

    def __init__(self, config: VQKDConfig):
        super().__init__(config)
        grid = config.grid_size
        self.encoder = VQKDVisionTransformer(
            config.num_channels, config.patch_size, grid, config.encoder_hidden_size, config.encoder_num_layers,
            config.encoder_num_heads, config.mlp_ratio, config.layer_norm_eps,
        )
        self.encoder_head = TaskHead(config.encoder_hidden_size, config.codebook_dim)
        behaviours = [KMeansInit(iters=10)] if config.kmeans_init else []
        behaviours.append(NormalizedEMAUpdate(decay=config.ema_decay))
        self.quantizer = VectorQuantizer(
            dim=config.codebook_dim, codebook_size=config.codebook_size, l2_norm=True, beta=config.commitment_beta,
            codebook_init="normal", behaviours=behaviours,
        )
        # The decoder reads the code grid as a 1x1-patch image.
        self.decoder = VQKDVisionTransformer(
            config.codebook_dim, 1, grid, config.decoder_hidden_size, config.decoder_num_layers, config.decoder_num_heads,
            config.mlp_ratio, config.layer_norm_eps,
        )
        self.decoder_head = TaskHead(config.decoder_hidden_size, config.teacher_feature_dim)
        self.build_pixel_decoder()
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        """BEiT v2's init: linears truncated N(0, 0.02) with zero biases, class token and positions
        truncated N(0, 0.02), the output projections of block i divided by sqrt(2 (i + 1)); the patch
        convs keep PyTorch's default; the codebook N(0, 1) (k-means replaces it on the first batch)."""
        super()._init_weights(module)
        if isinstance(module, (VQKDVisionTransformer, TaskHead)):
            # Children are initialised before their parent: this overrides the default above.
            for child in module.modules():
                if isinstance(child, nn.Linear):
                    init.trunc_normal_(child.weight, std=0.02)
                    if child.bias is not None:
                        init.zeros_(child.bias)
        if isinstance(module, VQKDVisionTransformer):
            init.trunc_normal_(module.class_token, std=0.02)
            init.trunc_normal_(module.position_embedding, std=0.02)
            for layer, block in enumerate(module.blocks, start=1):
                block.attn.proj.weight.div_((2.0 * layer) ** 0.5)
                block.mlp.fc2.weight.div_((2.0 * layer) ** 0.5)

    @property
    def downsample_factor(self) -> int:
        return self.config.patch_size

    # -- checks: learned positions fix the image size ------------------------------------
    def check_pixel_values(self, pixel_values) -> None:
        check_pixel_values(pixel_values, self.config.num_channels, self.downsample_factor)
        size = self.config.image_size
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f"VQ-KD has learned positions for {size}x{size} images only; got {tuple(pixel_values.shape[-2:])}. "
                f"Resize or crop to {size}x{size} (VQImageProcessor(size={size}) does this)."
            )
        self.check_dtype(pixel_values, "pixel_values")

    def latent_shape(self) -> tuple:
        dim, grid = self.config.codebook_dim, self.config.grid_size
        return (dim, grid, grid), f"(batch, {dim}, {grid}, {grid}) (codebook_dim, tokens per side, tokens per side)"

    def decode_indices(self, indices: torch.Tensor, return_dict: bool = True):
        grid = self.config.grid_size
        if isinstance(indices, torch.Tensor) and indices.ndim == 3 and tuple(indices.shape[1:]) != (grid, grid):
            raise ValueError(f"This VQ-KD decodes {grid}x{grid} grids of indices; got shape {tuple(indices.shape)}.")
        return super().decode_indices(indices, return_dict=return_dict)

    # -- the three steps -------------------------------------------------------------------
    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels (B, C, H, W) in [-1, 1] -> latents (B, codebook_dim, H/p, W/p) before the l2 norm."""
        tokens = self.encoder(pixel_values)
        # As BEiT v2: this head runs in the weights' precision even under mixed precision (autocast off).
        with torch.autocast(tokens.device.type, enabled=False):
            latents = self.encoder_head(tokens.to(self.encoder_head[-1].weight.dtype))
        grid = self.config.grid_size
        return latents.transpose(1, 2).reshape(latents.shape[0], -1, grid, grid)

    def predict_features(self, quantized: torch.Tensor) -> torch.Tensor:
        """Codes (B, codebook_dim, h, w) -> predicted teacher features (B, h * w, teacher_feature_dim).

        The stage-1 decoder (images come from ``decode`` once a pixel decoder is trained)."""
        return self.decoder_head(self.decoder(quantized))

    # -- the teacher ------------------------------------------------------------------------
    def load_teacher(self, name_or_path: str | None = None, dtype=None):
        """The frozen teacher the config names (or ``name_or_path``), at this model's resolution.

        It is returned, not attached: it never enters this model's state dict. Raises a
        ValueError when its features do not fit the decoder (size) or the token grid.
        """
        from ...modules.teachers import FrozenTeacher

        config = self.config
        teacher = FrozenTeacher.from_pretrained(name_or_path or config.teacher_name_or_path, features=config.teacher_features,
                                                image_size=config.image_size, dtype=dtype)
        self.check_teacher(teacher)
        return teacher

    def check_teacher(self, teacher) -> None:
        config = self.config
        if teacher.feature_dim != config.teacher_feature_dim:
            raise ValueError(
                f"Teacher {teacher.name_or_path!r} gives {teacher.feature_dim}-d features but this VQ-KD predicts "
                f"teacher_feature_dim = {config.teacher_feature_dim}: set teacher_feature_dim to {teacher.feature_dim} "
                "or pick the teacher the model was built for."
            )
        if teacher.grid_size != config.grid_size:
            raise ValueError(
                f"Teacher {teacher.name_or_path!r} gives a {teacher.grid_size}x{teacher.grid_size} grid of patch features "
                f"at {config.image_size}px but this VQ-KD has {config.grid_size}x{config.grid_size} tokens: the teacher's "
                f"patch size must equal patch_size = {config.patch_size}."
            )

    # -- forward ----------------------------------------------------------------------------
    def stage1_forward(self, pixel_values: torch.Tensor, teacher_features: torch.Tensor | None = None,
                       return_dict: bool = True, **kwargs) -> VQModelOutput:
        """``forward`` in stage 1 (no pixel decoder). Distillation step: ``loss = (1 - cos(prediction, teacher_features)) + commitment``.

        ``teacher_features``: (B, (H/p) * (W/p), teacher_feature_dim), the frozen teacher's patch
        features of the same pixels (``model.load_teacher()(pixel_values)``). ``reconstruction``
        is the prediction of them.
        """
        reject_unknown_arguments(type(self).__name__, kwargs, ("pixel_values", "teacher_features", "return_dict"))
        if teacher_features is None:
            raise ValueError(
                "VQKDModel.forward needs teacher_features, the target of its decoder: teacher = model.load_teacher(); "
                "model(pixel_values, teacher_features=teacher(pixel_values)). For codes only, use model.encode(pixel_values)."
            )
        encoded = self.encode(pixel_values)
        prediction = self.predict_features(encoded.quantized)
        if not isinstance(teacher_features, torch.Tensor) or teacher_features.shape != prediction.shape:
            shape = tuple(teacher_features.shape) if isinstance(teacher_features, torch.Tensor) else type(teacher_features).__name__
            raise ValueError(
                f"teacher_features must have shape {tuple(prediction.shape)} (batch, tokens, teacher_feature_dim) to match "
                f"the prediction; got {shape}."
            )
        reconstruction_loss = cosine_distance(prediction.float(), teacher_features.float())
        output = VQModelOutput.from_encoding(encoded, prediction, reconstruction_loss)
        return output if return_dict else output.to_tuple()


__all__ = ["TaskHead", "VQKDModel", "VQKDVisionTransformer", "cosine_distance"]
