"""Training losses: LPIPS perceptual loss, GAN losses, LeCam, the adaptive GAN weight."""

from .gan import (
    GAN_LOSSES,
    LeCamRegularizer,
    adaptive_generator_weight,
    discriminator_loss,
    generator_loss,
)
from .perceptual import LPIPSLoss, load_lpips_network, trunk_weights_path

__all__ = [
    "GAN_LOSSES",
    "LPIPSLoss",
    "LeCamRegularizer",
    "adaptive_generator_weight",
    "discriminator_loss",
    "generator_loss",
    "load_lpips_network",
    "trunk_weights_path",
]
