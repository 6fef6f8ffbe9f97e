"""The SimpleCNN autoencoder shared by the five tokenizers of the ImageNet 64x64 benchmark.

encoder -> quant_conv (1x1 to the code dim) -> quantizer -> post_quant_conv -> decoder.
Each tokenizer (VQ-VAE, FSQ-VAE, SimVQ-VAE, LFQ-VAE, CVQ-VAE) only chooses its quantizer.
"""

from ...modules import SimpleCNNDecoder, SimpleCNNEncoder
from ..base import ConvTokenizerModel
from .configuration_simple_cnn import SimpleCNNConfig


class SimpleCNNTokenizerModel(ConvTokenizerModel):
    """Base of the SimpleCNN tokenizers; a subclass implements ``build_quantizer(config)``."""

    config: SimpleCNNConfig
    downsample_factor = SimpleCNNEncoder.downsample_factor

    @staticmethod
    def latent_channels(config: SimpleCNNConfig) -> int:
        return config.hidden_dim

    def build_encoder(self, config: SimpleCNNConfig) -> SimpleCNNEncoder:
        return SimpleCNNEncoder(config.num_channels, config.hidden_dim, config.num_res_blocks)

    def build_decoder(self, config: SimpleCNNConfig) -> SimpleCNNDecoder:
        return SimpleCNNDecoder(config.num_channels, config.hidden_dim, config.num_res_blocks)
