"""LPIPS perceptual loss for training (the ``lpips`` package, VGG trunk as in taming and LlamaGen).

The package ships its calibrated linear layers; only the VGG16 trunk needs torchvision's
ImageNet weights, read from the torch hub cache. Nothing is downloaded here and nothing
falls back to random weights: a missing file is an error saying where to put it. Tests
(or users with their own network) pass an LPIPS module explicitly:
``LPIPSLoss(network=lpips.LPIPS(net="vgg", pnet_rand=True))``.
"""

import torch
from torch import nn

from ..modules.lpips_network import TRUNK_WEIGHT_FILES, TRUNK_WEIGHT_URLS, trunk_weights_path
from ..modules.lpips_network import load_lpips_network as _load_lpips_network

__all__ = ["LPIPSLoss", "TRUNK_WEIGHT_FILES", "TRUNK_WEIGHT_URLS", "load_lpips_network", "trunk_weights_path"]


def load_lpips_network(net: str = "vgg") -> nn.Module:
    """LPIPS with its ImageNet trunk from the torch hub cache (see ``hf_vq.modules.lpips_network``)."""
    return _load_lpips_network(net, alternative="set loss.lpips_weight: 0")


class LPIPSLoss(nn.Module):
    """Mean LPIPS distance between two image batches in [-1, 1]; frozen, always in eval mode.

    Args:
        network: an ``lpips.LPIPS`` module (or any module ``network(a, b) -> (B, 1, 1, 1)``);
            default: :func:`load_lpips_network` with ``net``.
        net: trunk used when ``network`` is not given ("vgg" for training).
    """

    def __init__(self, network: nn.Module | None = None, net: str = "vgg"):
        super().__init__()
        self.network = network if network is not None else load_lpips_network(net)
        self.network.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        # The trunk stays in eval mode: LPIPS is a fixed metric, not a trained module.
        return super().train(False)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.network(reconstruction.float(), target.float()).mean()
