"""What every hf_vq tokenizer shares: the config fields, the outputs and the API.

A tokenizer subclasses :class:`VQTokenizerPreTrainedModel` and implements three steps:
``encode_latents`` (pixels -> continuous latents), ``quantizer`` (a module from
``hf_vq.quantizers``) and ``decode_latents`` (quantized latents -> pixels). The base class
turns them into ``encode`` / ``decode`` / ``decode_indices`` / ``forward``, checks the
input and reports the losses, so the trainer and the evaluator never ask which tokenizer
they hold.
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..quantizers import Quantizer

# Pixels must lie in [-1, 1]; a little slack for resampling overshoot, nothing more.
PIXEL_RANGE_TOLERANCE = 0.05
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


@dataclass
class VQEncoderOutput(ModelOutput):
    """``encode`` output.

    quantized: what the decoder takes (straight-through to ``latents``).
    indices: (B, h, w) for 2D tokenizers, (B, N) for 1D ones.
    latents: the encoder output before quantization.
    quantizer_loss: weighted sum of ``loss_terms``.
    loss_terms: the quantizer's weighted terms ("commitment", "codebook", "entropy"...).
    perplexity: batch perplexity of the codes (a training monitor).
    """

    quantized: Optional[torch.FloatTensor] = None
    indices: Optional[torch.LongTensor] = None
    latents: Optional[torch.FloatTensor] = None
    quantizer_loss: Optional[torch.FloatTensor] = None
    loss_terms: Optional[dict] = None
    perplexity: Optional[torch.FloatTensor] = None


@dataclass
class VQDecoderOutput(ModelOutput):
    """``decode`` / ``decode_indices`` output: images in [-1, 1] (diffusers' ``.sample`` name)."""

    sample: Optional[torch.FloatTensor] = None


@dataclass
class VQModelOutput(ModelOutput):
    """``forward`` output: ``loss = reconstruction_loss + quantizer_loss``."""

    loss: Optional[torch.FloatTensor] = None
    reconstruction: Optional[torch.FloatTensor] = None
    indices: Optional[torch.LongTensor] = None
    quantized: Optional[torch.FloatTensor] = None
    reconstruction_loss: Optional[torch.FloatTensor] = None
    quantizer_loss: Optional[torch.FloatTensor] = None
    commitment_loss: Optional[torch.FloatTensor] = None
    codebook_loss: Optional[torch.FloatTensor] = None
    entropy_loss: Optional[torch.FloatTensor] = None
    perplexity: Optional[torch.FloatTensor] = None
    loss_terms: Optional[dict] = None


def check_pixel_values(pixel_values, num_channels: int, downsample_factor: int) -> None:
    """Raise a ValueError naming the problem and the fix for input that is not a pixel batch."""
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(
            f"pixel_values must be a torch.Tensor of shape (batch, {num_channels}, height, width); got "
            f"{type(pixel_values).__name__}. Use VQImageProcessor to turn images into tensors."
        )
    if pixel_values.ndim != 4:
        raise ValueError(
            f"pixel_values must be 4D (batch, {num_channels}, height, width); got shape {tuple(pixel_values.shape)}. "
            "Add a batch dimension with pixel_values[None] for a single image."
        )
    if not pixel_values.is_floating_point():
        raise ValueError(
            f"pixel_values must be a floating-point tensor in [-1, 1]; got dtype {pixel_values.dtype}. "
            "Convert uint8 images with VQImageProcessor (or x.float() / 127.5 - 1)."
        )
    if pixel_values.shape[1] != num_channels:
        hint = " It looks channel-last: use pixel_values.permute(0, 3, 1, 2)." if pixel_values.shape[-1] == num_channels else ""
        raise ValueError(
            f"pixel_values must have {num_channels} channels in dim 1 (batch, channels, height, width); got shape "
            f"{tuple(pixel_values.shape)}.{hint}"
        )
    height, width = pixel_values.shape[-2:]
    if height % downsample_factor or width % downsample_factor:
        raise ValueError(
            f"Image size {height}x{width} is not divisible by the downsampling factor {downsample_factor}. "
            f"Resize or crop to a multiple of {downsample_factor} (VQImageProcessor does this)."
        )
    # One reduction and one device sync per forward (this check runs on every training step).
    low, high = torch.stack(torch.aminmax(pixel_values.detach())).tolist()
    if low < -1 - PIXEL_RANGE_TOLERANCE or high > 1 + PIXEL_RANGE_TOLERANCE:
        raise ValueError(
            f"pixel_values must be in [-1, 1]; got values in [{low:.3g}, {high:.3g}]. "
            + ("These look like 0-255 values: " if high > 2 else "")
            + "map images with VQImageProcessor or x / 127.5 - 1 (uint8) / 2 * x - 1 ([0, 1])."
        )


def check_indices(indices, codebook_size: int, expected_ndim: int) -> None:
    if not isinstance(indices, torch.Tensor) or indices.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"indices must be an integer torch.Tensor; got {getattr(indices, 'dtype', type(indices))}.")
    if indices.ndim != expected_ndim:
        shape = "(batch, height, width)" if expected_ndim == 3 else "(batch, num_tokens)"
        raise ValueError(f"indices must have shape {shape}; got {tuple(indices.shape)}.")
    if indices.numel():
        low, high = torch.stack(torch.aminmax(indices)).tolist()
        if low < 0 or high >= codebook_size:
            raise ValueError(f"indices must be in [0, {codebook_size}); got values in [{low}, {high}].")


class VQTokenizerPreTrainedModel(PreTrainedModel):
    """Base class of every hf_vq tokenizer (2D grid of codes by default)."""

    config: VQTokenizerConfig
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    #: indices are (B, h, w) for grid tokenizers; 1D tokenizers set 2.
    indices_ndim = 3

    # A tokenizer defines: ``quantizer`` (a module of hf_vq.quantizers), ``downsample_factor``,
    # ``encode_latents(pixels) -> (B, D, h, w)`` and ``decode_latents(quantized) -> pixels``.
    quantizer: nn.Module
    downsample_factor: int

    # -- weights ---------------------------------------------------------------------
    @torch.no_grad()
    def _init_weights(self, module):
        """PyTorch's default init for convs/linears (as the reference code), then quantizer codebooks."""
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=5**0.5)
            if module.bias is not None:
                fan_in = module.weight.shape[1] * module.weight[0, 0].numel()
                if isinstance(module, nn.ConvTranspose2d):
                    fan_in = module.weight.shape[0] * module.weight[0, 0].numel()
                bound = 1 / fan_in**0.5 if fan_in > 0 else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)):
            if module.weight is not None:
                init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, Quantizer):
            module.reset_codebook()

    # -- the shared API --------------------------------------------------------------
    def check_pixel_values(self, pixel_values) -> None:
        check_pixel_values(pixel_values, self.config.num_channels, self.downsample_factor)

    def quantize(self, latents: torch.Tensor) -> VQEncoderOutput:
        """Quantize channel-first latents (B, D, h, w) through the channel-last quantizer."""
        out = self.quantizer(latents.permute(0, 2, 3, 1))
        return VQEncoderOutput(
            quantized=out.quantized.permute(0, 3, 1, 2).contiguous(),
            indices=out.indices,
            latents=latents,
            quantizer_loss=out.loss,
            loss_terms=out.loss_terms,
            perplexity=out.perplexity,
        )

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices (B, h, w) -> the ``quantized`` tensor that ``encode`` gives for them."""
        return self.quantizer.indices_to_codes(indices).permute(0, 3, 1, 2).contiguous()

    def encode(self, pixel_values: torch.Tensor) -> VQEncoderOutput:
        """Pixels in [-1, 1] (B, C, H, W) -> quantized latents, indices and quantizer losses."""
        self.check_pixel_values(pixel_values)
        return self.quantize(self.encode_latents(pixel_values))

    def decode(self, quantized: torch.Tensor, return_dict: bool = True):
        """Quantized latents -> images in [-1, 1]."""
        sample = self.decode_latents(quantized)
        return VQDecoderOutput(sample=sample) if return_dict else (sample,)

    def decode_indices(self, indices: torch.Tensor, return_dict: bool = True):
        """Indices -> images; equals ``decode(encode(x).quantized)`` for ``indices = encode(x).indices``."""
        check_indices(indices, self.config.codebook_size, self.indices_ndim)
        return self.decode(self.indices_to_quantized(indices), return_dict=return_dict)

    def push_to_hub(
        self, repo_id: str, image_processor=None, metrics: dict = None, private: bool = None, token=None,
        commit_message: str = None, **kwargs,
    ):
        """Upload the model, its image processor and the hf_vq model card (architecture, config, metrics).

        ``image_processor`` defaults to a ``VQImageProcessor`` at ``config.image_size``.
        """
        if kwargs:
            raise ValueError(f"Unsupported push_to_hub arguments {sorted(kwargs)}; hf_vq takes image_processor, "
                             "metrics, private, token and commit_message.")
        # The card renders the benchmark metrics table, which lives in the evaluation layer: import it here only.
        from ..hub import push_model_to_hub
        from ..processing import VQImageProcessor

        if image_processor is None:
            image_processor = VQImageProcessor(size=self.config.image_size, num_channels=self.config.num_channels)
        return push_model_to_hub(self, repo_id, image_processor=image_processor, metrics=metrics, private=private,
                                 token=token, commit_message=commit_message)

    def reconstruction_loss(self, reconstruction: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.config.reconstruction_loss == "l1":
            return F.l1_loss(reconstruction, pixel_values)
        return F.mse_loss(reconstruction, pixel_values)

    def forward(self, pixel_values: torch.Tensor, return_dict: bool = True, **kwargs) -> VQModelOutput:
        encoded = self.encode(pixel_values)
        reconstruction = self.decode_latents(encoded.quantized)
        reconstruction_loss = self.reconstruction_loss(reconstruction, pixel_values)
        terms = dict(encoded.loss_terms or {})
        output = VQModelOutput(
            loss=reconstruction_loss + encoded.quantizer_loss,
            reconstruction=reconstruction,
            indices=encoded.indices,
            quantized=encoded.quantized,
            reconstruction_loss=reconstruction_loss,
            quantizer_loss=encoded.quantizer_loss,
            commitment_loss=terms.get("commitment"),
            codebook_loss=terms.get("codebook"),
            entropy_loss=terms.get("entropy"),
            perplexity=encoded.perplexity,
            loss_terms={"reconstruction": reconstruction_loss, **terms},
        )
        return output if return_dict else output.to_tuple()
