"""Training losses: LPIPS and ConvNeXt-S perceptual losses, GAN losses, LeCam, the adaptive GAN weight,
DiffAugment of the discriminator's inputs."""

from .diff_augment import DIFF_AUGMENT_POLICIES, DiffAugment, check_diff_augment_policy
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
    "DIFF_AUGMENT_POLICIES",
    "DiffAugment",
    "GAN_LOSSES",
    "LPIPSLoss",
    "LeCamRegularizer",
    "adaptive_generator_weight",
    "check_diff_augment_policy",
    "discriminator_loss",
    "generator_loss",
    "load_convnext_small",
    "load_lpips_network",
    "trunk_weights_path",
]
