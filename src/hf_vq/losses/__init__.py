"""Training losses: LPIPS and ConvNeXt-S perceptual losses, GAN losses, LeCam, the adaptive GAN weight."""

from .gan import (
    GAN_LOSSES,
    LeCamRegularizer,
    adaptive_generator_weight,
    discriminator_loss,
    generator_loss,
)
from .perceptual import ConvNeXtPerceptualLoss, LPIPSLoss, load_convnext_small, load_lpips_network, trunk_weights_path

__all__ = [
    "ConvNeXtPerceptualLoss",
    "GAN_LOSSES",
    "LPIPSLoss",
    "LeCamRegularizer",
    "adaptive_generator_weight",
    "discriminator_loss",
    "generator_loss",
    "load_convnext_small",
    "load_lpips_network",
    "trunk_weights_path",
]
