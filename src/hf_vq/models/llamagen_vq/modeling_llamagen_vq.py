"""LlamaGen VQ: the VQGAN encoder/decoder with an l2-normalised 16384 x 8 codebook.

``quant_conv`` projects the 256 encoder channels to the 8 code channels (as LlamaGen does),
so the quantizer works directly in the 8-d code space: latents and codes are l2-normalised
before the nearest-code search and the normalised code is what the decoder receives.
"""

import torch
import torch.nn.functional as F
from transformers import initialization as init

from ...quantizers import VectorQuantizer
from ..vqgan import VQGANModel
from .configuration_llamagen_vq import LlamaGenVQConfig


class LlamaGenVQModel(VQGANModel):
    config: LlamaGenVQConfig
    config_class = LlamaGenVQConfig
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("l2_norm",)

    def build_quantizer(self, config: LlamaGenVQConfig) -> VectorQuantizer:
        return VectorQuantizer(
            dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            l2_norm=config.l2_norm,
            beta=config.commitment_beta,
        )

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        # LlamaGen draws U(-1/K, 1/K) and then normalises the rows: unit-norm codes keep the
        # gradient through F.normalize at a sane scale from the first step.
        if isinstance(module, VectorQuantizer) and module.l2_norm:
            # init.copy_ leaves a codebook loaded from a checkpoint untouched.
            init.copy_(module.codebook, F.normalize(module.codebook, dim=-1))


__all__ = ["LlamaGenVQModel"]
