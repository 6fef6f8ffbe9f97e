"""Taming VQGAN: VQGANEncoder -> quant_conv -> VectorQuantizer -> post_quant_conv -> VQGANDecoder.

The layout is that of ``taming.models.vqgan.VQModel``; ``hf_vq.convert.taming`` maps its
checkpoints onto these module names. LlamaGen's VQ model (``hf_vq.models.llamagen_vq``)
reuses this class with another quantizer and attention placement.
"""

import torch
from torch import nn

from ...modules import VQGANDecoder, VQGANEncoder
from ...quantizers import VectorQuantizer
from ..base import VQTokenizerPreTrainedModel
from .configuration_vqgan import VQGANConfig


class VQGANModel(VQTokenizerPreTrainedModel):
    config: VQGANConfig
    config_class = VQGANConfig

    def __init__(self, config: VQGANConfig):
        super().__init__(config)
        architecture = {
            "base_channels": config.base_channels,
            "channel_multipliers": list(config.channel_multipliers),
            "attention_levels": config.attention_levels,
            "z_channels": config.z_channels,
            "dropout": config.dropout,
        }
        self.encoder = VQGANEncoder(config.num_channels, num_res_blocks=config.num_res_blocks, **architecture)
        self.quant_conv = nn.Conv2d(config.z_channels, config.codebook_dim, kernel_size=1)
        self.quantizer = self.build_quantizer(config)
        self.post_quant_conv = nn.Conv2d(config.codebook_dim, config.z_channels, kernel_size=1)
        # Both reference code bases give each decoder level one ResNet block more than the encoder.
        self.decoder = VQGANDecoder(config.num_channels, num_res_blocks=config.num_res_blocks + 1, **architecture)
        self.post_init()

    def build_quantizer(self, config: VQGANConfig) -> VectorQuantizer:
        return VectorQuantizer(
            dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            distance="euclidean",
            beta=config.commitment_beta,
            legacy_beta=config.legacy_beta,
        )

    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(pixel_values))

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    @property
    def last_layer(self) -> torch.Tensor:
        """The decoder's final conv weight (where the adaptive GAN weight is measured)."""
        return self.decoder.last_layer


__all__ = ["VQGANModel"]
