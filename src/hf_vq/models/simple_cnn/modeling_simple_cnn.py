"""The SimpleCNN autoencoder shared by the five tokenizers of the ImageNet 64x64 benchmark.

encoder -> quant_conv (1x1 to the code dim) -> quantizer -> post_quant_conv -> decoder.
Each tokenizer (VQ-VAE, FSQ-VAE, SimVQ-VAE, LFQ-VAE, CVQ-VAE) only chooses its quantizer.
"""

import torch
import torch.nn as nn

from ...modules import SimpleCNNDecoder, SimpleCNNEncoder
from ..base import VQTokenizerConfig, VQTokenizerPreTrainedModel


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


class SimpleCNNTokenizerModel(VQTokenizerPreTrainedModel):
    """Base of the SimpleCNN tokenizers; a subclass implements ``build_quantizer(config)``."""

    config: SimpleCNNConfig
    downsample_factor = SimpleCNNEncoder.downsample_factor

    def __init__(self, config: SimpleCNNConfig):
        super().__init__(config)
        self.encoder = SimpleCNNEncoder(config.num_channels, config.hidden_dim, config.num_res_blocks)
        self.quant_conv = nn.Conv2d(config.hidden_dim, config.codebook_dim, kernel_size=1)
        self.quantizer = self.build_quantizer(config)
        self.post_quant_conv = nn.Conv2d(config.codebook_dim, config.hidden_dim, kernel_size=1)
        self.decoder = SimpleCNNDecoder(config.num_channels, config.hidden_dim, config.num_res_blocks)
        self.post_init()

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(pixel_values))

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    @property
    def last_layer(self) -> torch.Tensor:
        return self.decoder.last_layer
