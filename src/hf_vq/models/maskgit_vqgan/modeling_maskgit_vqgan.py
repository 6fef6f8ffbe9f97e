"""MaskGIT-VQGAN: MaskGIT encoder -> VectorQuantizer (1024 x 256, no normalisation) -> MaskGIT decoder.

The frozen tokenizer of TiTok's two-stage recipe. ``hf_vq.convert.convert_maskgit_vqgan_checkpoint``
maps the official ``maskgit-vqgan-imagenet-f16-256.bin`` (keys ``encoder.*``, ``quantize.embedding.weight``,
``decoder.*``) onto these module names.
"""

import torch

from ...modules.maskgit_vqgan import MaskGITDecoder, MaskGITEncoder
from ...quantizers import VectorQuantizer
from ..base import VQTokenizerPreTrainedModel
from .configuration_maskgit_vqgan import MaskGITVQGANConfig


class MaskGITVQGANModel(VQTokenizerPreTrainedModel):
    config: MaskGITVQGANConfig
    config_class = MaskGITVQGANConfig
    function_config_fields = ("zero_one_pixels",)

    def __init__(self, config: MaskGITVQGANConfig):
        super().__init__(config)
        sizes = (config.base_channels, config.channel_multipliers, config.num_res_blocks, config.codebook_dim)
        self.encoder = MaskGITEncoder(config.num_channels, *sizes)
        # The official quantizer weights the codebook-side term by beta (taming's legacy placement).
        self.quantizer = VectorQuantizer(dim=config.codebook_dim, codebook_size=config.codebook_size,
                                         beta=config.commitment_beta, legacy_beta=True)
        self.decoder = MaskGITDecoder(config.num_channels, *sizes)
        self.post_init()

    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.config.zero_one_pixels:
            pixel_values = pixel_values * 0.5 + 0.5
        return self.encoder(pixel_values)

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        out = self.decoder(quantized)
        return out * 2 - 1 if self.config.zero_one_pixels else out

    @property
    def last_layer(self) -> torch.Tensor:
        return self.decoder.last_layer


__all__ = ["MaskGITVQGANModel"]
