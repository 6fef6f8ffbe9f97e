"""Benchmark cases of the data pipeline and of the FID feature extraction (run by ``run_all.py``).

Data pipeline: images/s of one pass over a folder of JPEGs (``bench_images.write_jpeg_folder``:
photographs of various sizes) with a train transform to ``image_size``, batches of
``batch``, every loader single-process (``num_workers=0``):

- ``hf_vq``: ``hf_vq.training.dataloaders.build_dataloaders`` as ``hf-vq train`` builds it for
  ``data.train_data_dir`` (``datasets`` imagefolder, ``DecodedImageDataset``, its
  ``TrainTransform``: random square crop of 80-100% of the short side, BICUBIC resize, flip);
- ``pil``: a plain loop: ``Image.open``, the same crop, resize and flip with ``random``,
  ``torch.stack`` per batch;
- ``datasets_tv2``: ``datasets.load_dataset("imagefolder")`` + ``set_transform`` with a
  ``torchvision.transforms.v2`` pipeline (``RandomResizedCrop`` with square ratio and
  0.64-1 of the area, flip, ``ToDtype``, ``Normalize``) and a ``DataLoader``;
- ``decode``: the floor: ``Image.open(path).convert("RGB")`` alone (JPEG decoding);
- ``decode_resize``: the floor of these pixels: the decode and the plain loop's crop, BICUBIC resize and
  flip, nothing else (no tensors). Every loader that gives the ADM protocol's pixels does this work.

FID features: images/s of the 2048-d pool3 features of uint8 images (256 px), ours
(``hf_vq.evaluation.load_fid_inception``: the pytorch-fid port; and our torch-fidelity protocol
``load_torch_fidelity_inception``) vs the ``torch_fidelity`` package's
``FeatureExtractorInceptionV3``. The Inception weights cannot be downloaded here: FOR TIMING
ONLY, one file of random weights (He-initialised convolutions, seeded) in the layout both read
is written to a temporary folder and given to both.
"""

import random
import shutil
import sys
import tempfile
import weakref
from pathlib import Path

HERE = Path(__file__).resolve().parent


# -- data pipeline ------------------------------------------------------------------------------
def _image_folder(count: int) -> Path:
    sys.path.insert(0, str(HERE))
    from bench_images import write_jpeg_folder

    return write_jpeg_folder(Path(tempfile.mkdtemp(prefix="hf_vq_jpegs_")), count=count, seed=1)


def _pil_train_crop(image, size: int, rng: random.Random):
    """The plain loop's transform: random square crop of 80-100% of the short side, BICUBIC, flip."""
    from PIL import Image

    width, height = image.size
    side = max(1, round(min(width, height) * rng.uniform(0.8, 1.0)))
    left, top = rng.randint(0, width - side), rng.randint(0, height - side)
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return image.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image


def case_data_pipeline(p):
    import itertools

    import numpy as np
    import torch
    from PIL import Image

    root = _image_folder(p["images"])
    files = sorted((root / "photos").glob("*.jpg"))
    sides = []
    for path in files:
        with Image.open(path) as image:  # reads the header only
            sides.append(min(image.size))
    size, batch = p["image_size"], p["batch"]
    num_batches = len(files) // batch
    impl = p["impl"]
    if impl == "hf_vq":
        from accelerate import Accelerator

        from hf_vq.training.config import TrainConfig
        from hf_vq.training.dataloaders import build_dataloaders

        config = TrainConfig.from_dict({
            "model": {"model_type": "vqvae"}, "output_dir": str(root / "run"),
            "data": {"dataset": "imagefolder", "train_data_dir": str(root), "eval_data_dir": str(root),
                     "image_size": size, "num_workers": 0},
            "training": {"batch_size": batch}})
        batches, _ = build_dataloaders(config, Accelerator(cpu=True))

        def step():
            for item in itertools.islice(iter(batches), num_batches):
                assert item["pixel_values"].shape == (batch, 3, size, size)
    elif impl == "pil":
        rng = random.Random(0)

        def step():
            order = list(files)
            rng.shuffle(order)
            for start in range(0, num_batches * batch, batch):
                tensors = []
                for path in order[start:start + batch]:
                    with Image.open(path) as image:
                        crop = _pil_train_crop(image.convert("RGB"), size, rng)
                    tensors.append(torch.from_numpy(np.array(crop)).permute(2, 0, 1).float() / 127.5 - 1)
                assert torch.stack(tensors).shape == (batch, 3, size, size)
    elif impl == "datasets_tv2":
        from datasets import load_dataset
        from torchvision.transforms import v2

        dataset = load_dataset("imagefolder", data_dir=str(root), split="train", cache_dir=str(root / "cache"))
        transform = v2.Compose([
            v2.ToImage(),
            v2.RandomResizedCrop(size, scale=(0.64, 1.0), ratio=(1.0, 1.0)),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ])
        dataset.set_transform(lambda rows: {"pixel_values": [transform(image.convert("RGB")) for image in rows["image"]]})
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0, drop_last=True,
                                             collate_fn=lambda rows: torch.stack([row["pixel_values"] for row in rows]))

        def step():
            for item in loader:
                assert item.shape == (batch, 3, size, size)
    elif impl == "decode_resize":
        rng = random.Random(0)

        def step():
            for path in files[:num_batches * batch]:
                with Image.open(path) as image:
                    image.load()
                    _pil_train_crop(image if image.mode == "RGB" else image.convert("RGB"), size, rng)
    elif impl == "decode":
        def step():
            for path in files[:num_batches * batch]:
                with Image.open(path) as image:
                    image.convert("RGB")
    else:
        raise ValueError(impl)
    weakref.finalize(step, shutil.rmtree, root, True)  # the folder goes with the step (or at exit)
    return step, {"images": num_batches * batch, "smallest_side": min(sides), "largest_side": max(sides)}


# -- FID features -------------------------------------------------------------------------------
def random_inception_weights(path: Path) -> Path:
    """A random FID Inception state dict (seeded; He init keeps the activations O(1)) in the layout of
    both pytorch-fid's and torch-fidelity's weight files (torchvision Inception3 keys, 1008 classes)."""
    import torch

    from hf_vq.evaluation.fid import FIDInceptionV3

    torch.manual_seed(3)
    network = FIDInceptionV3().inception
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(network.state_dict(), path)
    return path


def _uint8_photos(count: int, size: int, seed: int = 2):
    """(count, 3, size, size) uint8 crops of scikit-image photographs."""
    import numpy as np
    import skimage.data
    import torch
    from PIL import Image

    sys.path.insert(0, str(HERE))
    from bench_images import PHOTOS

    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        source = Image.fromarray(getattr(skimage.data, PHOTOS[index % len(PHOTOS)])()).convert("RGB")
        width, height = source.size
        side = int(rng.integers(min(width, height) // 2, min(width, height) + 1))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crop = source.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        images.append(torch.from_numpy(np.array(crop)).permute(2, 0, 1))
    return torch.stack(images)


def _extractors(weights: Path):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from hf_vq.evaluation.fid import load_fid_inception, load_torch_fidelity_inception

    return {
        "hf_vq": load_fid_inception(weights),
        "hf_vq_torch_fidelity": load_torch_fidelity_inception(weights),
        "torch_fidelity": FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                      feature_extractor_weights_path=str(weights)).eval(),
    }


def case_fid_features(p):
    """Features of ``images`` uint8 images in batches of ``batch`` with one extractor (``impl``)."""
    import torch

    with tempfile.TemporaryDirectory(prefix="hf_vq_inception_") as scratch:  # the networks keep the weights
        extractor = _extractors(random_inception_weights(Path(scratch) / "inception.pth"))[p["impl"]]
    images = _uint8_photos(p["images"], p["image_size"])
    torch_fidelity = p["impl"] == "torch_fidelity"

    def step():
        with torch.no_grad():
            for start in range(0, len(images), p["batch"]):
                chunk = images[start:start + p["batch"]]
                # ours take float images in [0, 1] (what the evaluation feeds them); torch-fidelity uint8
                features = extractor(chunk) if torch_fidelity else extractor(chunk.float() / 255)
                features = features[0] if isinstance(features, tuple) else features
                assert features.shape == (len(chunk), 2048)

    return step, {"images": len(images)}


def case_fid_check(p):
    """Do ours and torch-fidelity compute the same features? (one call; the result is in ``check``)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with tempfile.TemporaryDirectory(prefix="hf_vq_inception_") as scratch:
        extractors = _extractors(random_inception_weights(Path(scratch) / "inception.pth"))
    package = extractors["torch_fidelity"]
    check = {}
    with torch.no_grad():
        images = _uint8_photos(p["images"], p["image_size"])
        reference = package(images)[0]
        check["feature_scale"] = float(reference.abs().mean())
        # our torch-fidelity protocol: floats in [0, 1] rounded to uint8 as save_image does, the package's network
        check["torch_fidelity_protocol"] = float((extractors["hf_vq_torch_fidelity"](images.float() / 255)
                                                  - reference).abs().max())
        # our pytorch-fid port: torch's bilinear resize and 2x - 1 instead of TF1's resize and (x - 128) / 128;
        # at 299 px (both resizes are the identity) with x = u / 256 (so 2x - 1 = (u - 128) / 128) only the
        # network differs
        at_299 = _uint8_photos(p["images"], 299)
        check["pytorch_fid_port_at_299"] = float((extractors["hf_vq"](at_299.float() / 256)
                                                  - package(at_299)[0]).abs().max())
        check["pytorch_fid_port_at_256"] = float((extractors["hf_vq"](images.float() / 255) - reference).abs().max())
        with FlopCounterMode(display=False) as counter:
            extractors["hf_vq"](images[:1].float() / 255)
        check["flops_per_image"] = float(counter.get_total_flops())

    def step():
        return None

    return step, {"check": check, "warmup": 0}
