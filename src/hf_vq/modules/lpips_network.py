"""The LPIPS network (the ``lpips`` package) with its ImageNet trunk read from disk.

One loader for both users: the perceptual training loss (VGG, as taming and LlamaGen) and
the LPIPS metric (AlexNet, as the benchmarks). The package ships its calibrated linear
layers; only the trunk needs torchvision's ImageNet weights. Nothing is downloaded and
nothing falls back to random weights: a missing file is an error naming it and where it goes.
"""

import warnings
from pathlib import Path

import torch
from torch import nn

# torchvision's ImageNet checkpoints of the two trunks (VGG16_Weights.IMAGENET1K_V1, AlexNet_Weights.IMAGENET1K_V1).
TRUNK_WEIGHT_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
TRUNK_WEIGHT_URLS = {net: f"https://download.pytorch.org/models/{name}" for net, name in TRUNK_WEIGHT_FILES.items()}


class MissingWeightsError(FileNotFoundError):
    """A network's weights are not on disk (nothing is downloaded at run time)."""


def trunk_weights_path(net: str = "vgg") -> Path:
    """Where torchvision (and so lpips) looks for the trunk weights: ``$TORCH_HOME/hub/checkpoints``."""
    if net not in TRUNK_WEIGHT_FILES:
        raise ValueError(f"Unknown LPIPS network {net!r}; choose one of {sorted(TRUNK_WEIGHT_FILES)}.")
    return Path(torch.hub.get_dir()) / "checkpoints" / TRUNK_WEIGHT_FILES[net]


def load_lpips_network(net: str = "vgg", weights_path=None, alternative: str = "") -> nn.Module:
    """``lpips.LPIPS(net=net)`` (v0.1, calibrated linear layers) with the trunk from ``weights_path``.

    ``weights_path`` defaults to torch's hub cache. ``alternative`` ends the missing-file
    message with what else the caller can do (e.g. "set loss.lpips_weight: 0").
    """
    import lpips

    default = trunk_weights_path(net)
    path = Path(weights_path) if weights_path else default
    if not path.is_file():
        raise MissingWeightsError(
            f"LPIPS ({net}) needs torchvision's ImageNet {net} weights, but {path} does not exist "
            f"(file {TRUNK_WEIGHT_FILES[net]}). Download {TRUNK_WEIGHT_URLS[net]} on a machine with internet and "
            f"save it as {default} (torch's hub cache; or set TORCH_HOME)" + (f", or {alternative}." if alternative else ".")
        )
    with warnings.catch_warnings():
        # pnet_rand=True builds the trunk without a download; lpips still passes torchvision's
        # deprecated `pretrained=` argument, whose warning is noise here. The trunk is loaded below.
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        network = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    # lpips splits torchvision's `features` into slices whose children keep the feature indices as names.
    features = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    trunk_layers = [
        (name, module)
        for slice_module in network.net.children()
        if isinstance(slice_module, nn.Sequential)
        for name, module in slice_module.named_children()
    ]
    expected = {f"{name}.{key}": value.shape for name, module in trunk_layers for key, value in module.state_dict().items()}
    if {key: value.shape for key, value in features.items() if key in expected} != expected:
        raise ValueError(
            f"{path} does not look like torchvision's {net} weights (its `features.*` tensors do not "
            f"match the LPIPS trunk). Replace it with {TRUNK_WEIGHT_URLS[net]}."
        )
    for name, module in trunk_layers:
        module.load_state_dict({key: features[f"{name}.{key}"] for key in module.state_dict()})
    return network.eval().requires_grad_(False)
