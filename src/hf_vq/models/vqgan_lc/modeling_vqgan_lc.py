"""VQGAN-LC: VQGANEncoder -> quant_conv -> frozen teacher codebook through a trained projector -> VQGANDecoder.

The backbone is taming's (identical blocks in ``vqgan-gpt-lc/models/encoder_decoder.py``);
the quantizer is :class:`~hf_vq.quantizers.ProjectedCodebookQuantizer`. The frozen codebook
is a persistent buffer (saved with the model, never trained); install one from
``hf-vq build-codebook`` with :meth:`VQGANLCModel.set_frozen_codebook` or
:meth:`VQGANLCModel.from_codebook`.
"""

import os

import torch

from ...quantizers.projected_codebook import ProjectedCodebookQuantizer
from ..vqgan import VQGANModel
from .configuration_vqgan_lc import VQGANLCConfig


class VQGANLCModel(VQGANModel):
    config: VQGANLCConfig
    config_class = VQGANLCConfig

    def build_quantizer(self, config: VQGANLCConfig) -> ProjectedCodebookQuantizer:
        return ProjectedCodebookQuantizer(
            dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            feature_dim=config.codebook_feature_dim,
            commitment_weight=config.quantizer_weight * config.commitment_weight,
            codebook_weight=config.quantizer_weight * config.codebook_weight,
        )

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        # The base class gives every Linear PyTorch's default init (children are initialised
        # before their parent); VQGAN-LC draws the projector from N(0, dim^-0.5).
        if isinstance(module, ProjectedCodebookQuantizer):
            module.reset_projection()

    def set_frozen_codebook(self, features: torch.Tensor) -> None:
        """Install the frozen (codebook_size, codebook_feature_dim) codebook."""
        self.quantizer.set_frozen_codebook(features)

    @classmethod
    def from_codebook(cls, config: VQGANLCConfig, codebook: "torch.Tensor | str | os.PathLike") -> "VQGANLCModel":
        """A fresh model around a frozen codebook (a tensor or an ``hf-vq build-codebook`` file)."""
        if not isinstance(codebook, torch.Tensor):
            from safetensors.torch import load_file

            tensors = load_file(str(codebook))
            if "codebook" not in tensors:
                raise ValueError(f"{codebook} has no 'codebook' tensor (keys {sorted(tensors)}); make it with hf-vq build-codebook.")
            if not config.codebook_source:
                config.codebook_source = str(codebook)
            codebook = tensors["codebook"]
        model = cls(config)
        model.set_frozen_codebook(codebook)
        return model


__all__ = ["VQGANLCModel"]
