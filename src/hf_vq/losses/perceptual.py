"""Perceptual losses for training: LPIPS (the ``lpips`` package, VGG trunk as in taming and LlamaGen) and
TiTok's ConvNeXt-S output distance.

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

__all__ = [
    "CONVNEXT_WEIGHT_FILE", "ConvNeXtPerceptualLoss", "LPIPSLoss", "TRUNK_WEIGHT_FILES", "TRUNK_WEIGHT_URLS",
    "load_convnext_small", "load_lpips_network", "trunk_weights_path",
]


def load_lpips_network(net: str = "vgg") -> nn.Module:
    """LPIPS with its ImageNet trunk from the torch hub cache (see ``hf_vq.modules.lpips_network``)."""
    return _load_lpips_network(net, alternative="set loss.lpips_weight: 0")


class LPIPSLoss(nn.Module):
    """Mean LPIPS distance between two image batches in [-1, 1]; frozen.

    The network is always in eval mode, except with ``dropout``: then LPIPS's dropout layers (p 0.5 on
    the normalised feature differences before each linear head) follow this module's train / eval
    mode. That is how taming, LlamaGen's ``vq_train.py``, VQGAN-LC and the IU tokenizers train: their
    loss module is put in train mode with the model, and their LPIPS has these dropout layers. The
    expected loss is the same; its value and gradient are noisier. (TiTok's official perceptual loss
    puts itself in eval mode at every call: no dropout.)

    Args:
        network: an ``lpips.LPIPS`` module (or any module ``network(a, b) -> (B, 1, 1, 1)``);
            default: :func:`load_lpips_network` with ``net``.
        net: trunk used when ``network`` is not given ("vgg" for training).
        dropout: train with the network's dropout layers active (``loss.perceptual_dropout``).
    """

    def __init__(self, network: nn.Module | None = None, net: str = "vgg", dropout: bool = False):
        super().__init__()
        self.network = network if network is not None else load_lpips_network(net)
        self.network.requires_grad_(False)
        self.dropout = False
        self.set_dropout(dropout)

    def set_dropout(self, enabled: bool) -> "LPIPSLoss":
        """Whether the network's dropout layers are active in train mode (they never are in eval mode)."""
        if enabled and not any(isinstance(module, nn.Dropout) for module in self.network.modules()):
            raise ValueError(f"loss.perceptual_dropout needs an LPIPS network with dropout layers (lpips.LPIPS's "
                             f"default use_dropout=True); {type(self.network).__name__} has none. Set "
                             "loss.perceptual_dropout: false or pass such a network.")
        self.dropout = enabled
        return self.train(self.training)

    def train(self, mode: bool = True):
        # LPIPS is a fixed metric, not a trained module: the network stays in eval mode, its dropout
        # layers aside when `dropout` is set.
        super().train(mode)
        self.network.eval()
        for module in self.network.modules():
            if isinstance(module, nn.Dropout):
                module.train(mode and self.dropout)
        return self

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.network(reconstruction.float(), target.float()).mean()


CONVNEXT_WEIGHT_FILE = "convnext_small-0c510722.pth"  # torchvision ConvNeXt_Small_Weights.IMAGENET1K_V1
CONVNEXT_WEIGHT_URL = f"https://download.pytorch.org/models/{CONVNEXT_WEIGHT_FILE}"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_convnext_small(weights_path=None) -> nn.Module:
    """torchvision's ConvNeXt-S with its ImageNet weights from ``weights_path`` (default: torch's hub cache)."""
    from pathlib import Path

    from torchvision.models import convnext_small

    from ..modules.lpips_network import MissingWeightsError

    default = Path(torch.hub.get_dir()) / "checkpoints" / CONVNEXT_WEIGHT_FILE
    path = Path(weights_path) if weights_path else default
    if not path.is_file():
        raise MissingWeightsError(
            f"The ConvNeXt-S perceptual loss needs torchvision's ImageNet ConvNeXt-S weights, but {path} does not exist. "
            f"Download {CONVNEXT_WEIGHT_URL} on a machine with internet and save it as {default} (torch's hub cache; "
            "or set TORCH_HOME), or set loss.convnext_weight: 0."
        )
    network = convnext_small()
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network.eval().requires_grad_(False)


class ConvNeXtPerceptualLoss(nn.Module):
    """TiTok's perceptual term (bytedance/1d-tokenizer ``PerceptualLoss("convnext_s")``): both images in [0, 1]
    resized to 224 (bilinear, antialiased), ImageNet-normalised, through ConvNeXt-S; the loss is the mean
    squared difference of its outputs (the 1000 class logits). Frozen, always in eval mode.

    Args:
        network: the module to compare outputs of (default: :func:`load_convnext_small`).
    """

    def __init__(self, network: nn.Module | None = None):
        super().__init__()
        self.network = network if network is not None else load_convnext_small()
        self.network.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        images = (images.float() + 1) / 2  # hf_vq's [-1, 1] -> the official [0, 1]
        images = nn.functional.interpolate(images, size=224, mode="bilinear", align_corners=False, antialias=True)
        return self.network((images - self.mean) / self.std)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(self.features(reconstruction), self.features(target))
