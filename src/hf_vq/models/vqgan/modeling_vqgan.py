"""Taming VQGAN: VQGANEncoder -> quant_conv -> VectorQuantizer -> post_quant_conv -> VQGANDecoder.

The layout is that of ``taming.models.vqgan.VQModel``; ``hf_vq.convert.taming`` maps its
checkpoints onto these module names. LlamaGen's VQ model (``hf_vq.models.llamagen_vq``)
reuses this class with another quantizer and attention placement.
"""

from ...modules import VQGANDecoder, VQGANEncoder
from ...quantizers import VectorQuantizer
from ..base import ConvTokenizerModel
from .configuration_vqgan import VQGANConfig


class VQGANModel(ConvTokenizerModel):
    config: VQGANConfig
    config_class = VQGANConfig

    @staticmethod
    def latent_channels(config: VQGANConfig) -> int:
        return config.z_channels

    @staticmethod
    def _architecture(config: VQGANConfig) -> dict:
        return {
            "base_channels": config.base_channels,
            "channel_multipliers": list(config.channel_multipliers),
            "attention_levels": config.attention_levels,
            "z_channels": config.z_channels,
            "dropout": config.dropout,
        }

    def build_encoder(self, config: VQGANConfig) -> VQGANEncoder:
        return VQGANEncoder(config.num_channels, num_res_blocks=config.num_res_blocks, **self._architecture(config))

    def build_decoder(self, config: VQGANConfig) -> VQGANDecoder:
        # Both reference code bases give each decoder level one ResNet block more than the encoder.
        return VQGANDecoder(config.num_channels, num_res_blocks=config.num_res_blocks + 1, **self._architecture(config))

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


__all__ = ["VQGANModel"]
