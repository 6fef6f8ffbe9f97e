"""Stage 2 of semantic tokenizers: a LlamaGen pixel decoder behind a frozen encoder and quantizer.

Semantic tokenizers (Cluster, VQ-KD; IU-tokenizer paper, magic-research/vector_quantization
``configs/decoder/``) learn their codes without pixels. Stage 2 trains a pixel decoder with
the GAN recipe while the encoder and the quantizer stay frozen, so that afterwards ``encode``
gives indices, ``decode`` / ``decode_indices`` / ``forward`` give images in [-1, 1] and the
model is a tokenizer like any other (``hf-vq tokenize``, ``train-ar``, ``generate``).

:class:`PixelDecoderMixin` gives a tokenizer that contract. A model using it:

* subclasses ``PixelDecoderMixin`` before ``VQTokenizerPreTrainedModel``;
* has a ``pixel_decoder`` field in its config (``dict | None``, checked with
  :func:`~hf_vq.models.configuration_pixel_decoder.pixel_decoder_config`);
* calls ``self.build_pixel_decoder()`` last in ``__init__`` (after its stage-1 modules, before
  ``post_init``);
* implements ``stage1_forward(pixel_values, return_dict)`` (what ``forward`` does before stage 2).

Once a model has a pixel decoder, everything else in it (its stage-1 modules: encoder,
quantizer, a feature decoder) is frozen for good: no parameter requires grad, the modules stay
in eval mode whatever ``train()`` says (so codebook behaviours such as CVQ anchors never run),
and ``encode`` runs under ``torch.no_grad()``.
"""

import torch
import torch.nn as nn

from ..modules import VQGANDecoder
from .configuration_pixel_decoder import pixel_decoder_config


class PixelDecoder(nn.Module):
    """Codes (B, codebook_dim, h, w) -> pixels: LlamaGen's ``post_quant_conv`` (1x1 to ``z_channels``) + decoder."""

    def __init__(self, codebook_dim: int, config):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(codebook_dim, config.z_channels, kernel_size=1)
        # LlamaGenVQModel's decoder: one ResNet block more than num_res_blocks, attention at the lowest level.
        self.decoder = VQGANDecoder(
            config.num_channels, base_channels=config.base_channels, channel_multipliers=list(config.channel_multipliers),
            num_res_blocks=config.num_res_blocks + 1, attention_levels=config.attention_levels,
            z_channels=config.z_channels, dropout=config.dropout,
        )

    @property
    def last_layer(self) -> torch.Tensor:
        return self.decoder.last_layer

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))


class PixelDecoderMixin:
    """A semantic tokenizer with an optional pixel decoder (see the module docstring)."""

    pixel_decoder: PixelDecoder | None

    # -- building ---------------------------------------------------------------------
    def pixel_decoder_settings(self):
        """The decoder's ``LlamaGenVQConfig`` from ``config.pixel_decoder`` (None before stage 2)."""
        config = self.config
        if config.pixel_decoder is None:
            return None
        return pixel_decoder_config(config.pixel_decoder, config.image_size, config.num_channels, self.downsample_factor)

    def build_pixel_decoder(self) -> None:
        """Create ``self.pixel_decoder`` when the config has one (and freeze stage 1); call last in ``__init__``."""
        settings = self.pixel_decoder_settings()
        self.pixel_decoder = None if settings is None else PixelDecoder(self.config.codebook_dim, settings)
        if self.pixel_decoder is not None:
            self.freeze_stage1()

    def add_pixel_decoder(self, settings: dict | None = None) -> PixelDecoder:
        """Start stage 2 on a trained stage-1 model: add a freshly initialised pixel decoder, freeze the rest.

        ``settings``: LlamaGen decoder fields (``PIXEL_DECODER_FIELDS``); default LlamaGen VQ-16's.
        """
        if self.pixel_decoder is not None:
            raise ValueError(f"This {type(self).__name__} already has a pixel decoder; train it further with "
                             "model.pretrained (the stage-2 model) instead of adding another.")
        settings = dict(settings or {})
        config = self.config
        # Checked before anything changes: a bad setting leaves the stage-1 model as it was.
        decoder_config = pixel_decoder_config(settings, config.image_size, config.num_channels, self.downsample_factor)
        config.pixel_decoder = settings
        parameter = next(self.parameters(), None)
        # PyTorch's default init at construction is the one _init_weights gives convs; post_init is
        # not called again: it would redraw the trained codebook.
        decoder = PixelDecoder(self.config.codebook_dim, decoder_config)
        if parameter is not None:
            decoder = decoder.to(parameter.device, parameter.dtype)
        self.pixel_decoder = decoder
        self.freeze_stage1()
        return decoder

    # -- frozen stage 1 -----------------------------------------------------------------
    def stage1_modules(self) -> dict:
        """``{name: module}`` of everything but the pixel decoder (frozen in stage 2)."""
        return {name: module for name, module in self.named_children() if name != "pixel_decoder"}

    def freeze_stage1(self) -> None:
        for module in self.stage1_modules().values():
            module.requires_grad_(False)
            module.train(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "pixel_decoder", None) is not None:
            # Frozen for good: a quantizer in training mode would still move its codebook (EMA, anchors).
            for module in self.stage1_modules().values():
                module.train(False)
        return self

    # -- the tokenizer API --------------------------------------------------------------
    def encode(self, pixel_values: torch.Tensor):
        if self.pixel_decoder is None:
            return super().encode(pixel_values)
        with torch.no_grad():
            return super().encode(pixel_values)

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        if self.pixel_decoder is None:
            raise ValueError(
                f"This {type(self).__name__} has no pixel decoder yet (stage 1: its codes come from a frozen "
                "understanding model, not from pixels). Train one behind the frozen encoder and quantizer "
                "(configs/iu/*-pixel-decoder.yaml: model.stage1_from = this model's folder); encode() works already."
            )
        return self.pixel_decoder(quantized)

    @property
    def decodes_pixels(self) -> bool:
        """Image metrics apply once the pixel decoder exists (stage 1 decodes nothing, or features)."""
        return self.pixel_decoder is not None

    @property
    def last_layer(self) -> torch.Tensor:
        """The pixel decoder's final conv weight (the adaptive GAN weight is measured there)."""
        if self.pixel_decoder is None:
            raise AttributeError(f"{type(self).__name__} has no pixel decoder, hence no last_layer.")
        return self.pixel_decoder.last_layer

    def forward(self, pixel_values: torch.Tensor, return_dict: bool = True, **kwargs):
        """Stage 1: the model's own ``stage1_forward``; stage 2: the tokenizer forward (reconstruction + loss)."""
        if self.pixel_decoder is None:
            return self.stage1_forward(pixel_values, return_dict=return_dict, **kwargs)
        return super().forward(pixel_values, return_dict=return_dict, **kwargs)


__all__ = ["PixelDecoder", "PixelDecoderMixin"]
