"""The SimpleCNN autoencoder shared by the five tokenizers of the ImageNet 64x64 benchmark.

encoder -> quant_conv (1x1 to the code dim) -> quantizer -> post_quant_conv -> decoder.
Each tokenizer (VQ-VAE, FSQ-VAE, SimVQ-VAE, LFQ-VAE, CVQ-VAE) only chooses its quantizer.
"""

from ...modules import SimpleCNNDecoder, SimpleCNNEncoder
from ..base import ConvTokenizerModel, VQTokenizerConfig


class SimpleCNNConfig(VQTokenizerConfig):
    """SimpleCNN fields (not registered; the tokenizer configs subclass it).

    Args:
        hidden_dim: channels of the encoder/decoder (256 in the benchmark).
        num_res_blocks: residual blocks in encoder and decoder (2).
        codebook_dim: channels of the quantized latents.
    """

    hidden_dim: int = 256
    num_res_blocks: int = 2
    codebook_dim: int = 64


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
