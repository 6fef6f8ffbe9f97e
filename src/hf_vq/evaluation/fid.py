"""rFID: the FID Inception network, feature statistics and the Frechet distance.

Two protocols (``FID_PROTOCOLS``), the two ways the papers we compare with compute rFID:

- ``pytorch-fid`` (the IU-tokenizer code, ADM): the Inception v3 of TensorFlow's FID code
  as ported by pytorch-fid (weights ``pt_inception-2015-12-05-6726825d.pth``):
  torchvision's Inception v3 with 1008 classes and four blocks whose pooling branch
  behaves as TensorFlow's. Float images are bilinearly resized to 299 (torch's
  interpolation) and mapped from [0, 1] to [-1, 1]; features are the 2048-d pool3.
- ``torch-fidelity`` (the visual-tokenizer benchmark): the ``torch-fidelity`` package's
  own feature extractor (weights ``weights-inception-2015-12-05-6726825d.pth``) on uint8
  images, as the benchmark feeds it PNGs written by ``torchvision.utils.save_image``
  (``floor(255 x + 0.5)``); the package resizes with TensorFlow 1's bilinear rule and
  normalises with ``(x - 128) / 128``.

Statistics are accumulated as sums (features and their outer products) so they can be
summed across processes and never need every feature in memory. The reference
statistics of the center-cropped originals are cached in an ``.npz`` (mu, sigma,
num_images, description): every reported rFID names them and their image count.
"""

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv_inception

from ..utils.distributed import all_reduce_sum
from .metrics import MissingWeightsError

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_FILE}"
TORCH_FIDELITY_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
TORCH_FIDELITY_WEIGHTS_URL = (
    f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{TORCH_FIDELITY_WEIGHTS_FILE}"
)
FID_PROTOCOLS = ("pytorch-fid", "torch-fidelity")
FID_INPUT_SIZE = 299
FID_FEATURE_DIM = 2048


# -- the FID Inception network ------------------------------------------------------------


def _tf_average_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3 SAME average pool: border windows average only the real pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class _FIDInceptionA(tv_inception.InceptionA):
    def _forward(self, x):
        return [
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_tf_average_pool(x)),
        ]


class _FIDInceptionC(tv_inception.InceptionC):
    def _forward(self, x):
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return [self.branch1x1(x), seven, double, self.branch_pool(_tf_average_pool(x))]


class _FIDInceptionE(tv_inception.InceptionE):
    """The two E blocks differ only in the pooling of their pool branch."""

    def __init__(self, in_channels: int, pool):
        super().__init__(in_channels)
        self.pool = pool

    def _forward(self, x):
        three = self.branch3x3_1(x)
        three = torch.cat([self.branch3x3_2a(three), self.branch3x3_2b(three)], 1)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        double = torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], 1)
        return [self.branch1x1(x), three, double, self.branch_pool(self.pool(x))]


class FIDInceptionV3(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> (B, 2048) pool3 features of the FID Inception.

    ``FIDInceptionV3()`` has random weights (for tests and shape checks); use
    :func:`load_fid_inception` for the real network.
    """

    protocol = "pytorch-fid"
    description = "pytorch-fid Inception v3 (pt_inception-2015-12-05) pool3, bilinear resize to 299"

    def __init__(self):
        super().__init__()
        network = tv_inception.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
        network.Mixed_5b = _FIDInceptionA(192, pool_features=32)
        network.Mixed_5c = _FIDInceptionA(256, pool_features=64)
        network.Mixed_5d = _FIDInceptionA(288, pool_features=64)
        network.Mixed_6b = _FIDInceptionC(768, channels_7x7=128)
        network.Mixed_6c = _FIDInceptionC(768, channels_7x7=160)
        network.Mixed_6d = _FIDInceptionC(768, channels_7x7=160)
        network.Mixed_6e = _FIDInceptionC(768, channels_7x7=192)
        network.Mixed_7b = _FIDInceptionE(1280, pool=_tf_average_pool)
        network.Mixed_7c = _FIDInceptionE(2048, pool=_max_pool)
        self.inception = network
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        net = self.inception
        for layer in (
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, net.maxpool1,
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, net.maxpool2,
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a,
            net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e,
            net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, net.avgpool,
        ):
            x = layer(x)
        return x.flatten(1)

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1008) logits of the network's own classifier on the pool3 features (for the Inception Score)."""
        return self.inception.fc(self(images))


def to_uint8_like_png(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> uint8 as ``torchvision.utils.save_image`` writes them: floor(255 x + 0.5), clamped."""
    return images.float().mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


class TorchFidelityInception(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> (B, 2048) features of torch-fidelity's Inception on their uint8 values.

    ``extractor`` is a ``torch_fidelity`` ``FeatureExtractorInceptionV3`` built with the
    features ``["2048"]`` (see :func:`load_torch_fidelity_inception`), or any module that
    takes uint8 images and returns the features (or a 1-tuple of them).
    """

    protocol = "torch-fidelity"
    description = (
        "torch-fidelity Inception v3 (weights-inception-2015-12-05) pool3 2048, uint8 images "
        "(floor(255x+0.5)), TF1 bilinear resize to 299, (x-128)/128"
    )

    def __init__(self, extractor: nn.Module):
        super().__init__()
        self.extractor = extractor
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.extractor(to_uint8_like_png(images))
        return features[0] if isinstance(features, tuple) else features


def default_fid_weights_path() -> Path:
    """pytorch-fid downloads its weights into torch's hub cache; we look there."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def default_torch_fidelity_weights_path() -> Path:
    """torch-fidelity downloads its weights with ``torch.hub.load_state_dict_from_url``: torch's hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_WEIGHTS_FILE


def _weights_file(weights_path, default: Path, url: str, package: str) -> Path:
    path = Path(weights_path) if weights_path else default
    if not path.is_file():
        raise MissingWeightsError(
            f"rFID needs the FID Inception weights, but {path} does not exist. Download {url} "
            f"and save it as {default} (torch's hub cache, where {package} keeps it), "
            "or pass its path (--fid-weights / weights_path)."
        )
    return path


def _read_state_dict(path: Path) -> dict:
    """A state dict of tensors, read without running pickled code (``weights_only=True``)."""
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated file, random bytes, a pickle with code: all refused the same way
        raise ValueError(
            f"{path} is not a readable FID Inception weights file ({type(error).__name__}: {str(error)[:200]}). "
            "Download it again."
        ) from error
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a state dict of FID Inception weights.")
    return state_dict


def load_fid_inception(weights_path=None) -> FIDInceptionV3:
    """The FID Inception with the standard weights, read from ``weights_path`` or torch's hub cache."""
    path = _weights_file(weights_path, default_fid_weights_path(), FID_WEIGHTS_URL, "pytorch-fid")
    network = FIDInceptionV3()
    try:
        network.inception.load_state_dict(_read_state_dict(path))
    except RuntimeError as error:
        raise ValueError(f"{path} does not hold the pytorch-fid Inception weights: {error}") from error
    return network


def load_torch_fidelity_inception(weights_path=None) -> TorchFidelityInception:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with its weights, from ``weights_path`` or torch's hub cache.

    Never downloads. The file is parsed here with ``weights_only=True`` (torch-fidelity itself
    would unpickle it with code execution); the package then reads those tensors from memory.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = _weights_file(
        weights_path, default_torch_fidelity_weights_path(), TORCH_FIDELITY_WEIGHTS_URL, "torch-fidelity"
    )
    buffer = io.BytesIO()
    torch.save(_read_state_dict(path), buffer)
    buffer.seek(0)
    try:
        extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=buffer)
    except RuntimeError as error:
        raise ValueError(f"{path} does not hold torch-fidelity's Inception weights: {error}") from error
    return TorchFidelityInception(extractor)


def load_fid_feature_extractor(protocol: str = "pytorch-fid", weights_path=None) -> nn.Module:
    """The feature extractor of an rFID protocol (``FID_PROTOCOLS``) with its weights (see the loaders)."""
    check_fid_protocol(protocol)
    if protocol == "torch-fidelity":
        return load_torch_fidelity_inception(weights_path)
    return load_fid_inception(weights_path)


def check_fid_protocol(protocol: str) -> str:
    if protocol not in FID_PROTOCOLS:
        raise ValueError(f"Unknown FID protocol {protocol!r}; choose one of {list(FID_PROTOCOLS)}.")
    return protocol


def feature_extractor_protocol(extractor) -> str:
    """The protocol an extractor implements; "custom" for an injected module that names none."""
    return getattr(extractor, "protocol", "custom")


def feature_extractor_description(extractor) -> str:
    return getattr(extractor, "description", type(extractor).__name__)


# -- statistics ---------------------------------------------------------------------------


@dataclass
class FIDStatistics:
    """Mean and covariance of features, with what they were computed on."""

    mu: np.ndarray
    sigma: np.ndarray
    num_images: int
    description: str
    # What the statistics were computed from (data source and its fingerprint, crop, protocol), JSON-ready.
    source: dict | None = None

    def save(self, path) -> Path:
        """Written to a temporary file and renamed: an interrupted save never leaves a truncated cache."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with open(temporary, "wb") as handle:  # a file handle keeps numpy from appending ".npz"
            np.savez(
                handle, mu=self.mu, sigma=self.sigma, num_images=self.num_images, description=self.description,
                source=json.dumps(self.source or {}, sort_keys=True),
            )
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, path) -> "FIDStatistics":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No FID statistics at {path}; compute them with compute_fid_statistics first.")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = {"mu", "sigma", "num_images", "description"} - set(data.files)
                if missing:
                    raise ValueError(f"{path} is not an hf_vq FID statistics file: it lacks {sorted(missing)}.")
                source = json.loads(str(data["source"])) if "source" in data.files else None
                return cls(data["mu"], data["sigma"], int(data["num_images"]), str(data["description"]), source)
        except (OSError, EOFError, KeyError, json.JSONDecodeError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"{path} is not a readable FID statistics file ({type(error).__name__}: {error}); delete it to "
                "recompute the statistics."
            ) from error


class FeatureStatistics:
    """Running sums of features; ``compute()`` gives mean and (N-1) covariance as np.cov."""

    def __init__(self, feature_dim: int | None = None):
        self.feature_dim = feature_dim
        self.count = 0
        self.feature_sum = None
        self.outer_sum = None

    def update(self, features: torch.Tensor) -> None:
        # The sums live on the features' device (NCCL all-reduces only accelerator tensors), in
        # float64 where the device has it (MPS does not).
        features = features.detach()
        features = features.double() if features.device.type != "mps" else features.float()
        if self.feature_sum is None:
            dim = features.shape[1]
            self.feature_sum = features.new_zeros(dim)
            self.outer_sum = features.new_zeros(dim, dim)
        self.feature_sum += features.sum(0)
        self.outer_sum += features.T @ features
        self.count += features.shape[0]

    def compute(self, description: str, all_reduce: bool = False, source: dict | None = None) -> FIDStatistics:
        if self.feature_sum is None:
            raise ValueError("No features were accumulated: the evaluation set is empty.")
        count = self.feature_sum.new_tensor(float(self.count))
        feature_sum, outer_sum = self.feature_sum.clone(), self.outer_sum.clone()
        if all_reduce:
            all_reduce_sum(count)
            all_reduce_sum(feature_sum)
            all_reduce_sum(outer_sum)
        n = int(count.item())
        if n < 2:
            raise ValueError(f"FID statistics need at least 2 images; got {n}.")
        feature_sum, outer_sum = feature_sum.cpu().double(), outer_sum.cpu().double()
        mu = feature_sum / n
        sigma = (outer_sum - n * torch.outer(mu, mu)) / (n - 1)
        return FIDStatistics(mu.cpu().numpy(), sigma.cpu().numpy(), n, description, source)


@torch.no_grad()
def compute_fid_statistics(images, extractor, description: str, device=None) -> FIDStatistics:
    """Statistics of ``extractor`` features over batches of images in [-1, 1]."""
    device = device or next(extractor.parameters()).device
    statistics = FeatureStatistics()
    for batch in images:
        statistics.update(extractor(((batch.float().clamp(-1, 1) + 1) / 2).to(device)))
    return statistics.compute(description, all_reduce=True)


def frechet_distance(first: FIDStatistics, second: FIDStatistics) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the
    symmetric S1^(1/2) S2 S1^(1/2) (same spectrum as S1 S2), which stays real and stable
    for the rank-deficient covariances of small evaluation sets.
    """
    mu1, mu2 = np.asarray(first.mu, np.float64), np.asarray(second.mu, np.float64)
    sigma1, sigma2 = np.asarray(first.sigma, np.float64), np.asarray(second.sigma, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"FID statistics have different feature sizes ({mu1.shape} vs {mu2.shape}): they come from "
            "different feature extractors."
        )
    eigenvalues, eigenvectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt_sigma1 = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    product = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)
