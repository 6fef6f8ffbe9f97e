"""LPIPS perceptual loss for training (the ``lpips`` package, VGG trunk as in taming and LlamaGen).

The package ships its calibrated linear layers; only the VGG16 trunk needs torchvision's
ImageNet weights, read from the torch hub cache. Nothing is downloaded here and nothing
falls back to random weights: a missing file is an error saying where to put it. Tests
(or users with their own network) pass an LPIPS module explicitly:
``LPIPSLoss(network=lpips.LPIPS(net="vgg", pnet_rand=True))``.
"""

import warnings
from pathlib import Path

import torch
from torch import nn

# torchvision's ImageNet VGG16 weights (VGG16_Weights.IMAGENET1K_V1) and AlexNet (for evaluation-style LPIPS).
TRUNK_WEIGHT_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
TRUNK_WEIGHT_URLS = {
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
}


def trunk_weights_path(net: str = "vgg") -> Path:
    """Where torchvision (and so lpips) looks for the trunk weights: ``$TORCH_HOME/hub/checkpoints``."""
    if net not in TRUNK_WEIGHT_FILES:
        raise ValueError(f"Unknown LPIPS network {net!r}; choose one of {sorted(TRUNK_WEIGHT_FILES)}.")
    return Path(torch.hub.get_dir()) / "checkpoints" / TRUNK_WEIGHT_FILES[net]


def load_lpips_network(net: str = "vgg") -> nn.Module:
    """``lpips.LPIPS(net=net)`` with its pretrained linear layers and the ImageNet trunk from the hub cache."""
    import lpips

    path = trunk_weights_path(net)
    if not path.is_file():
        raise FileNotFoundError(
            f"LPIPS needs torchvision's ImageNet {net} weights at {path} (file {path.name} is missing). "
            f"Download {TRUNK_WEIGHT_URLS[net]} on a machine with internet and copy it there "
            "(or set TORCH_HOME to a folder whose hub/checkpoints holds it), or set loss.lpips_weight: 0."
        )
    with warnings.catch_warnings():
        # lpips builds its trunk with torchvision's deprecated `pretrained=` argument; we load the weights below.
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        network = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    # lpips splits torchvision's `features` into slices whose children keep the feature indices as names.
    features = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    trunk_layers = [(name, module) for slice_index in range(1, network.net.N_slices + 1)
                    for name, module in getattr(network.net, f"slice{slice_index}").named_children()]
    expected = {f"{name}.{key}": value.shape for name, module in trunk_layers for key, value in module.state_dict().items()}
    if {key: value.shape for key, value in features.items()} != expected:
        raise ValueError(f"{path} does not look like torchvision's {net} weights (its `features.*` tensors do not "
                         f"match the LPIPS trunk). Replace it with {TRUNK_WEIGHT_URLS[net]}.")
    for name, module in trunk_layers:
        module.load_state_dict({key: features[f"{name}.{key}"] for key in module.state_dict()})
    return network


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
