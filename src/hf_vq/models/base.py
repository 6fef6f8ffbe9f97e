"""What every hf_vq tokenizer shares: the outputs and the API (the config fields: configuration_base.py).

A tokenizer subclasses :class:`VQTokenizerPreTrainedModel` and implements three steps:
``encode_latents`` (pixels -> continuous latents), ``quantizer`` (a module from
``hf_vq.quantizers``) and ``decode_latents`` (quantized latents -> pixels). The base class
turns them into ``encode`` / ``decode`` / ``decode_indices`` / ``forward``, checks the
input and reports the losses, so the trainer and the evaluator never ask which tokenizer
they hold.
"""

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..quantizers import Quantizer
from ..quantizers.base import check_index_range
from ..utils.value_checks import batched_value_checks, check_values, read_dtype
from .configuration_base import VQTokenizerConfig
from .loading import StrictLoadingMixin

# Pixels must lie in [-1, 1]; a little slack for resampling overshoot, nothing more.
PIXEL_RANGE_TOLERANCE = 0.05


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

    @classmethod
    def from_encoding(cls, encoded: "VQEncoderOutput", reconstruction: torch.Tensor | None = None,
                      reconstruction_loss: torch.Tensor | None = None) -> "VQModelOutput":
        """The output of ``encode`` plus what the decoder made of it (pixels, or features for a semantic stage 1);
        without a reconstruction loss (Cluster's stage 1) the loss is the quantizer's alone."""
        terms = dict(encoded.loss_terms or {})
        loss = encoded.quantizer_loss
        if reconstruction_loss is not None:
            loss = reconstruction_loss + loss
            terms = {"reconstruction": reconstruction_loss, **terms}
        return cls(
            loss=loss,
            reconstruction=reconstruction,
            indices=encoded.indices,
            quantized=encoded.quantized,
            reconstruction_loss=reconstruction_loss,
            quantizer_loss=encoded.quantizer_loss,
            commitment_loss=terms.get("commitment"),
            codebook_loss=terms.get("codebook"),
            entropy_loss=terms.get("entropy"),
            perplexity=encoded.perplexity,
            loss_terms=terms,
        )


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
    if pixel_values.shape[0] == 0:
        raise ValueError(f"pixel_values is an empty batch (shape {tuple(pixel_values.shape)}): pass at least one image.")
    if torch.compiler.is_compiling():
        # The value checks read the tensor's values on the host: under torch.compile that is a graph
        # break and a device sync per call, so a compiled model checks shapes only (as transformers'
        # models skip their data-dependent checks when compiling). Run it eagerly to check values.
        return
    # One reduction per call; the host reads its [min, max] together with the call's other value
    # checks (hf_vq.utils.value_checks): one device sync per encode / forward, not one per check.
    stats = torch.stack(torch.aminmax(pixel_values.detach()))
    # On the device, what _raise_for_pixel_range decides (compared in the type the read uses): lets a quantizer
    # skip its codebook update from bad pixels without reading this check first (queued_checks_passed).
    low, high = stats.to(read_dtype(stats.device))
    passes = low.isfinite() & high.isfinite() & (low >= -1 - PIXEL_RANGE_TOLERANCE) & (high <= 1 + PIXEL_RANGE_TOLERANCE)
    check_values(stats, _raise_for_pixel_range, passes)


def _raise_for_pixel_range(values: list) -> None:
    low, high = values
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(
            f"pixel_values contain NaN or infinite values (range [{low}, {high}]): check the images and their "
            "preprocessing; a NaN pixel would give NaN reconstructions and, in training, poison the codebook."
        )
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
    if indices.numel() and not torch.compiler.is_compiling():  # values: eager only (see check_pixel_values)
        check_index_range(indices, "indices", codebook_size)



def reject_unknown_arguments(model_name: str, kwargs: dict, accepted) -> None:
    if kwargs:
        raise TypeError(f"{model_name}.forward() got unexpected argument(s) {sorted(kwargs)}; it takes {', '.join(accepted)}.")


class VQTokenizerPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    """Base class of every hf_vq tokenizer (2D grid of codes by default)."""

    config: VQTokenizerConfig
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    #: indices are (B, h, w) for grid tokenizers; 1D tokenizers set 2.
    indices_ndim = 3
    #: False for a stage-1 tokenizer whose decoder predicts features, not images (VQ-KD): image metrics refuse it.
    decodes_pixels = True

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
                # PyTorch's fan-in is weight.shape[1] * k^2 for both: out_channels * k^2 for a
                # transposed conv, whose weight is (in_channels, out_channels, k, k).
                fan_in = module.weight.shape[1] * module.weight[0, 0].numel()
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
        self.check_dtype(pixel_values, "pixel_values")

    def check_dtype(self, tensor: torch.Tensor, name: str) -> None:
        """The input's float type must be the weights' (the README's rule): nothing is cast silently.

        Under ``torch.autocast`` (mixed-precision training and inference) the autocast decides
        the compute type, and any float input is accepted.
        """
        if tensor.dtype == self.dtype or torch.is_autocast_enabled(tensor.device.type):
            return
        raise ValueError(
            f"{name} are {tensor.dtype} but the weights of this {type(self).__name__} are {self.dtype}. Cast the input "
            f"({name}.to(model.dtype)) or the model (model.to({tensor.dtype})), or run under torch.autocast."
        )

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

    @batched_value_checks
    def encode(self, pixel_values: torch.Tensor) -> VQEncoderOutput:
        """Pixels in [-1, 1] (B, C, H, W) -> quantized latents, indices and quantizer losses."""
        self.check_pixel_values(pixel_values)
        return self.quantize(self.encode_latents(pixel_values))

    def decode(self, quantized: torch.Tensor, return_dict: bool = True):
        """Quantized latents -> images in [-1, 1]."""
        self.check_latents(quantized)
        sample = self.decode_latents(quantized)
        return VQDecoderOutput(sample=sample) if return_dict else (sample,)

    def latent_shape(self) -> tuple:
        """What ``encode(x).quantized`` looks like after the batch dimension: (sizes, with None where any
        size is allowed; how an error message describes the whole shape). 2D tokenizers: (codebook_dim, h, w)."""
        channels = self.config.codebook_dim
        return (channels, None, None), f"(batch, {channels}, height, width) (codebook_dim = {channels})"

    def check_latents(self, quantized) -> None:
        """``decode`` takes what ``encode(x).quantized`` gives (see ``latent_shape``), as floats."""
        expected, described = self.latent_shape()
        fits = (isinstance(quantized, torch.Tensor) and quantized.ndim == len(expected) + 1
                and all(size is None or actual == size for actual, size in zip(quantized.shape[1:], expected)))
        if not fits:
            shape = tuple(quantized.shape) if isinstance(quantized, torch.Tensor) else type(quantized).__name__
            raise ValueError(
                f"decode() takes quantized latents of shape {described}, as encode(x).quantized gives; got {shape}. "
                "For indices use decode_indices()."
            )
        if quantized.shape[0] == 0:
            raise ValueError("decode() got an empty batch: pass at least one latent.")
        self.check_dtype(quantized, "quantized latents")

    @batched_value_checks
    def decode_indices(self, indices: torch.Tensor, return_dict: bool = True):
        """Indices -> images; equals ``decode(encode(x).quantized)`` for ``indices = encode(x).indices``."""
        check_indices(indices, self.config.codebook_size, self.indices_ndim)
        if indices.shape[0] == 0:
            raise ValueError("decode_indices() got an empty batch: pass at least one grid of indices.")
        # The codes come from the codebook itself: no latent check needed.
        sample = self.decode_latents(self.indices_to_quantized(indices))
        return VQDecoderOutput(sample=sample) if return_dict else (sample,)

    def default_image_processor(self):
        """The ``VQImageProcessor`` that crops to ``config.image_size`` (what evaluation and the Hub card assume)."""
        from ..processing import VQImageProcessor

        return VQImageProcessor(size=self.config.image_size, num_channels=self.config.num_channels)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
        image_processor=None,
        metrics: dict | None = None,
        model_card=None,
    ):
        """transformers' ``push_to_hub`` (same arguments) that also uploads the image processor and the hf_vq card.

        One commit holds the weights, ``config.json``, the image processor (default: a
        ``VQImageProcessor`` at ``config.image_size``) and ``README.md``: ``model_card`` (a
        ``huggingface_hub.ModelCard`` or markdown text) or, by default, the hf_vq card rendered
        from the config and ``metrics`` (``hf-vq evaluate``'s dict). ``tags`` are added to the card.
        """
        from ..utils.hub_upload import upload_folder_to_hub
        from ..utils.model_card import render_tokenizer_card

        if model_card is None:
            model_card = render_tokenizer_card(
                self.config.to_dict(), repo_id, type(self).__name__, self.num_parameters(),
                downsample_factor=self.downsample_factor, metrics=metrics, tags=tags,
            )
        elif metrics:
            raise ValueError("Pass either model_card or metrics (which fill the default card), not both.")
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size)
            (image_processor or self.default_image_processor()).save_pretrained(folder)
            readme = Path(folder) / "README.md"
            if isinstance(model_card, str):
                readme.write_text(model_card)
            else:
                if tags:
                    model_card.data.tags = list(dict.fromkeys([*(model_card.data.tags or []), *tags]))
                model_card.save(readme)
            return upload_folder_to_hub(
                folder, repo_id, commit_message=commit_message or "Upload hf_vq tokenizer, image processor and model card",
                commit_description=commit_description, private=private, token=token, revision=revision,
                create_pr=create_pr,
            )

    def reconstruction_loss(self, reconstruction: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.config.reconstruction_loss == "l1":
            return F.l1_loss(reconstruction, pixel_values)
        return F.mse_loss(reconstruction, pixel_values)

    @batched_value_checks
    def forward(self, pixel_values: torch.Tensor, return_dict: bool = True, **kwargs) -> VQModelOutput:
        # transformers' utilities pass keyword arguments by name; one this model does not know
        # (a typo, or a GPT argument given to a tokenizer) must not be silently ignored.
        reject_unknown_arguments(type(self).__name__, kwargs, ("pixel_values", "return_dict"))
        encoded = self.encode(pixel_values)
        reconstruction = self.decode_latents(encoded.quantized)
        reconstruction_loss = self.reconstruction_loss(reconstruction, pixel_values)
        output = VQModelOutput.from_encoding(encoded, reconstruction, reconstruction_loss)
        return output if return_dict else output.to_tuple()


class ConvTokenizerModel(VQTokenizerPreTrainedModel):
    """encoder -> quant_conv (1x1 to the code dim) -> quantizer -> post_quant_conv (1x1 back) -> decoder.

    The layout shared by the SimpleCNN tokenizers and the taming / LlamaGen VQGANs. A subclass
    defines ``latent_channels(config)`` (channels at the encoder's output and the decoder's input),
    ``build_encoder(config)`` / ``build_decoder(config)`` (conv stacks with a ``last_layer``) and
    ``build_quantizer(config)`` (a module of ``hf_vq.quantizers``).
    """

    def __init__(self, config):
        super().__init__(config)
        latent_channels = self.latent_channels(config)
        # Creation order fixes the random initialisation: encoder, convs and quantizer, decoder.
        self.encoder = self.build_encoder(config)
        self.quant_conv = nn.Conv2d(latent_channels, config.codebook_dim, kernel_size=1)
        self.quantizer = self.build_quantizer(config)
        self.post_quant_conv = nn.Conv2d(config.codebook_dim, latent_channels, kernel_size=1)
        self.decoder = self.build_decoder(config)
        self.post_init()

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(pixel_values))

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    @property
    def last_layer(self) -> torch.Tensor:
        """The decoder's final conv weight (where the adaptive GAN weight is measured)."""
        return self.decoder.last_layer
