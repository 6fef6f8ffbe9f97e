"""rFID protocols: torch-fidelity's own pipeline as the reference, weights loading, what every result records."""

import io
import json
import pickle

import numpy as np
import pytest
import torch
from test_evaluation_pipeline import TinyFeatures  # the stand-in FID feature extractor

import hf_vq
from hf_vq.cli.main import main
from hf_vq.evaluation import evaluate_model_dir, evaluate_reconstruction
from hf_vq.evaluation.fid import (
    TORCH_FIDELITY_WEIGHTS_FILE,
    FIDInceptionV3,
    TorchFidelityInception,
    load_fid_feature_extractor,
    load_torch_fidelity_inception,
    to_uint8_like_png,
)
from hf_vq.evaluation.metrics import MissingWeightsError
from hf_vq.hub import render_model_card


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=32)).eval()


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A locally generated weights file with torch-fidelity's keys (ours and theirs share the layout)."""
    torch.manual_seed(3)
    network = FIDInceptionV3().inception
    for module in network.modules():  # He init keeps the activations O(1) through the 94 layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("weights") / TORCH_FIDELITY_WEIGHTS_FILE
    torch.save(network.state_dict(), path)
    return path


def test_png_rounding_is_torchvision_save_image():
    from PIL import Image
    from torchvision.utils import save_image

    images = torch.rand(2, 3, 5, 7)
    images[0, 0, 0, :4] = torch.tensor([0.5 / 255, 1.5 / 255, 0.0, 1.0])
    expected = []
    for image in images:  # what save_image writes, read back
        buffer = io.BytesIO()
        save_image(image, buffer, format="png")
        expected.append(np.asarray(Image.open(buffer)))
    np.testing.assert_array_equal(to_uint8_like_png(images).permute(0, 2, 3, 1).numpy(), np.stack(expected))


def test_torch_fidelity_features_equal_the_package_reading_save_image_pngs(random_inception_weights, tmp_path):
    """The benchmark's route: save_image PNGs, read by torch-fidelity's dataset, its extractor loaded by itself.

    (The statistics and the Frechet distance after the features are shared by both protocols
    and checked against numpy/scipy in test_evaluation_fid.py. The whole route through
    ``torch_fidelity.calculate_metrics`` agrees too, but costs minutes on a CPU: 2048-d eigvals.)
    """
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchvision.utils import save_image

    torch.manual_seed(0)
    images = torch.rand(1, 3, 24, 20)  # in [0, 1]: non-square, not 299, values between uint8 steps
    paths = []
    for index, image in enumerate(images):
        paths.append(str(tmp_path / f"{index}.png"))
        save_image(image, paths[-1])
    dataset = ImagesPathDataset(paths)
    package = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(random_inception_weights))
    with torch.no_grad():
        expected = package(dataset[0][None])[0]
        ours = load_torch_fidelity_inception(random_inception_weights)(images)
    # Features of a meaningful size: one uint8 step in the input moves them by about 5e-3.
    assert ours.shape == (1, 2048) and expected.abs().mean() > 0.1
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    # the pytorch-fid protocol (float images, torch's resize) gives other features from the same weights
    pytorch_fid = FIDInceptionV3()
    pytorch_fid.inception.load_state_dict(torch.load(random_inception_weights, weights_only=True))
    with torch.no_grad():
        assert (pytorch_fid(images) - expected).abs().max() > 1e-2


def test_torch_fidelity_weights_are_found_in_torch_hub_and_never_unpickled_with_code(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(MissingWeightsError, match=TORCH_FIDELITY_WEIGHTS_FILE) as error:
        load_fid_feature_extractor("torch-fidelity")
    message = str(error.value)
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / TORCH_FIDELITY_WEIGHTS_FILE) in message
    assert "https://github.com/toshas/torch-fidelity/releases" in message and "--fid-weights" in message
    with pytest.raises(ValueError, match="Unknown FID protocol 'clean-fid'"):
        load_fid_feature_extractor("clean-fid")
    # random bytes, and a pickle whose loading would run code: refused with the file named
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ValueError, match="garbage.pth is not a readable FID Inception weights file"):
        load_torch_fidelity_inception(garbage)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (pathlib_touch, (str(marker),))

    malicious = tmp_path / "malicious.pth"
    with open(malicious, "wb") as handle:
        pickle.dump({"Conv2d_1a_3x3.conv.weight": Payload()}, handle, protocol=2)
    for loader in (load_torch_fidelity_inception, lambda path: load_fid_feature_extractor("pytorch-fid", path)):
        with pytest.raises(ValueError, match="malicious.pth is not a readable"):
            loader(malicious)
    assert not marker.exists()
    # a state dict of another network is named as such
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="does not hold torch-fidelity's Inception weights"):
        load_torch_fidelity_inception(other)


def pathlib_touch(path):
    import pathlib

    pathlib.Path(path).touch()


class TinyUint8Features(torch.nn.Module):
    """A stand-in for torch-fidelity's extractor: uint8 in, a 1-tuple of features out (as the package)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 5, 3, stride=2)

    def forward(self, images):
        assert images.dtype == torch.uint8
        return (self.conv((images.float() - 128) / 128).tanh().mean((2, 3)),)


def test_protocol_reference_and_count_are_in_the_metrics_json_and_the_model_card(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path / "cache"))
    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    output = model_dir / "eval_metrics.json"
    evaluate_model_dir(
        model_dir, max_images=12, metrics=("usage", "psnr", "rfid"), output=output, progress=False,
        fid_feature_extractor=TorchFidelityInception(TinyUint8Features()), fid_protocol="torch-fidelity",
    )
    results = json.loads(output.read_text())
    assert results["rfid_protocol"] == "torch-fidelity"
    reference = results["rfid_reference"]
    assert reference["protocol"] == "torch-fidelity" and reference["num_images"] == 12
    assert "embedded validation split (first 12)" in reference["description"]
    assert reference["source"]["crop_size"] == 32 and reference["source"]["num_images"] == 12
    card = render_model_card(model_dir).content
    assert "rFID (torch-fidelity protocol)" in card and "torch-fidelity Inception v3" in card
    assert "(first 12), ADM center crop 32px, 12 images originals" in card and "(12 images)" in card
    # An extractor of the other protocol is refused, not silently used under this name.
    with pytest.raises(ValueError, match="implements the 'pytorch-fid' FID protocol, but fid_protocol is 'torch-fidelity'"):
        evaluate_model_dir(model_dir, max_images=4, metrics=("rfid",), progress=False,
                           fid_feature_extractor=FIDInceptionV3(), fid_protocol="torch-fidelity")


def test_cli_fid_protocol_flag_reaches_the_loader(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    output = tmp_path / "metrics.json"
    assert main(["evaluate", str(model_dir), "--max-images", "4", "--metrics", "usage", "rfid",
                 "--fid-protocol", "torch-fidelity", "--output", str(output)]) == 0
    assert TORCH_FIDELITY_WEIGHTS_FILE in json.loads(output.read_text())["skipped_metrics"]["rfid"]
    with pytest.raises(SystemExit):
        main(["evaluate", str(model_dir), "--fid-protocol", "clean-fid"])
    assert "invalid choice: 'clean-fid'" in capsys.readouterr().err


def test_custom_extractor_is_recorded_as_custom(tiny_model):
    originals = torch.rand(6, 3, 32, 32) * 2 - 1
    results = evaluate_reconstruction(tiny_model, [originals], progress=False, metrics=("rfid",),
                                      fid_feature_extractor=TinyFeatures())
    assert results["rfid_protocol"] == "custom" and results["rfid_feature_extractor"] == "test random conv features"
