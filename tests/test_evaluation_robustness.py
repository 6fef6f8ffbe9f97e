"""hf-vq evaluate on bad inputs, the reference-statistics cache key, and where distributed sums live."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from test_evaluation_pipeline import TinyFeatures  # the stand-in FID feature extractor

import hf_vq
from hf_vq.evaluation import evaluate_model_dir, evaluate_reconstruction
from hf_vq.evaluation.fid import FeatureStatistics, FIDStatistics


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model")
    hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16)).save_pretrained(path)
    return path


def write_images(folder, seed, count=6, size=20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def rfid(model_dir, data, **kwargs):
    return evaluate_model_dir(model_dir, data=data, metrics=("rfid",), progress=False,
                              fid_feature_extractor=TinyFeatures(), **kwargs)


# -- the reference-statistics cache (issue 10, point 4) ----------------------------------------------


def test_same_relative_folder_name_elsewhere_does_not_reuse_statistics(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path / "cache"))
    write_images(tmp_path / "first" / "images", seed=0)
    write_images(tmp_path / "second" / "images", seed=1)
    monkeypatch.chdir(tmp_path / "first")
    first = rfid(model_dir, "images")
    monkeypatch.chdir(tmp_path / "second")
    second = rfid(model_dir, "images")
    assert first["rfid_reference"]["path"] != second["rfid_reference"]["path"]
    # the truth for the second folder: computed without any cache
    fresh = rfid(model_dir, "images", fid_reference=tmp_path / "fresh.npz")
    assert second["rfid"] == pytest.approx(fresh["rfid"], rel=1e-9)
    assert abs(second["rfid"] - first["rfid"]) > 1e-6
    # the file says what it was computed from
    stored = FIDStatistics.load(second["rfid_reference"]["path"]).source
    assert stored["data"]["source"] == str((tmp_path / "second" / "images").resolve())
    assert stored["data"]["kind"] == "image folder" and stored["data"]["num_files"] == 6
    assert stored["crop_size"] == 16 and stored["num_images"] == 6 and stored["protocol"] == "custom"
    assert stored["feature_extractor"] == "test random conv features"


def test_changed_images_with_the_same_count_do_not_reuse_statistics(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path / "cache"))
    folder = write_images(tmp_path / "images", seed=0)
    before = rfid(model_dir, str(folder))
    write_images(folder, seed=5)  # same names, same count, same sizes on disk? not necessarily: set mtimes apart too
    for path in folder.iterdir():
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    after = rfid(model_dir, str(folder))
    assert after["rfid_reference"]["path"] != before["rfid_reference"]["path"]
    fresh = rfid(model_dir, str(folder), fid_reference=tmp_path / "fresh.npz")
    assert after["rfid"] == pytest.approx(fresh["rfid"], rel=1e-9)
    assert abs(after["rfid"] - before["rfid"]) > 1e-6
    # the same unchanged data reuses its statistics (the cache still works)
    again = rfid(model_dir, str(folder))
    assert again["rfid_reference"]["path"] == after["rfid_reference"]["path"] and again["rfid"] == after["rfid"]


def test_a_given_reference_file_computed_from_other_data_is_refused(model_dir, tmp_path):
    reference = tmp_path / "reference.npz"
    rfid(model_dir, str(write_images(tmp_path / "a", seed=0)), fid_reference=reference)
    with pytest.raises(ValueError, match="was computed from other data") as error:
        rfid(model_dir, str(write_images(tmp_path / "b", seed=1)), fid_reference=reference)
    assert "Delete it or pass another --fid-reference" in str(error.value)
    # the crop size and the protocol are part of what it was computed from, too
    with pytest.raises(ValueError, match="was computed from other data"):
        rfid(model_dir, str(tmp_path / "a"), fid_reference=reference, image_size=12)
    # a truncated cache names the file and the fix
    reference.write_bytes(reference.read_bytes()[:50])
    with pytest.raises(ValueError, match="reference.npz is not a readable FID statistics file.*delete it"):
        rfid(model_dir, str(tmp_path / "a"), fid_reference=reference)


# -- clear errors instead of tracebacks (issue 10, point 7) ------------------------------------------


def test_missing_model_dir_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="Model directory .*no_such_model does not exist.*config.json"):
        evaluate_model_dir(tmp_path / "no_such_model", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty has no config.json"):
        evaluate_model_dir(tmp_path / "empty", progress=False)


def test_a_gpt_dir_is_refused_as_not_a_tokenizer(tmp_path):
    config = hf_vq.LlamaGenGPTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=16,
                                     block_size=4, num_classes=2)
    hf_vq.LlamaGenGPTModel(config).save_pretrained(tmp_path / "gpt")
    with pytest.raises(ValueError, match="holds a 'llamagen_gpt' model, not an image tokenizer.*hf-vq generate"):
        evaluate_model_dir(tmp_path / "gpt", progress=False)


def test_missing_data_folder_is_named_not_looked_up_on_the_hub(model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"--data \./my_images: no such folder .*my_images does not exist"):
        evaluate_model_dir(model_dir, data="./my_images", progress=False)
    # a bare name could be a Hub dataset: the message covers both readings (the tests run offline)
    with pytest.raises(ValueError, match=r"--data my_images is neither an existing folder \(.*my_images does not "
                                         r"exist\) nor a Hub dataset that could be loaded"):
        evaluate_model_dir(model_dir, data="my_images", progress=False)


def test_corrupt_images_are_skipped_counted_and_reported(model_dir, tmp_path):
    folder = write_images(tmp_path / "images", seed=0, count=5)
    (folder / "3.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")  # corrupt
    truncated = (folder / "4.png").read_bytes()
    (folder / "4.png").write_bytes(truncated[: len(truncated) // 2])  # truncated
    with pytest.warns(UserWarning, match="Skipping unreadable image .*3.png"):
        results = evaluate_model_dir(model_dir, data=str(folder), metrics=("usage", "psnr"), progress=False,
                                     output=tmp_path / "m.json")
    assert results["num_images"] == 3 and results["unreadable_images_skipped"] == 2
    assert np.isfinite(results["psnr"])
    assert json.loads((tmp_path / "m.json").read_text())["unreadable_images_skipped"] == 2
    # nothing readable: an error, not a NaN
    for path in folder.iterdir():
        path.write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="No images were evaluated"):
        evaluate_model_dir(model_dir, data=str(folder), metrics=("psnr",), progress=False)


@pytest.mark.parametrize("count", [0, -3])
def test_max_images_must_be_positive(model_dir, count):
    with pytest.raises(ValueError, match=f"--max-images must be a positive number of images; got {count}"):
        evaluate_model_dir(model_dir, max_images=count, progress=False)


def test_an_empty_evaluation_set_is_an_error_not_nan(model_dir):
    model = hf_vq.VQVAEModel.from_pretrained(model_dir)
    with pytest.raises(ValueError, match="No images were evaluated"):
        evaluate_reconstruction(model, [], progress=False)


# -- distributed sums live on the evaluation device (NCCL reduces only accelerator tensors) ----------


def test_feature_sums_stay_on_the_features_device():
    statistics = FeatureStatistics()
    statistics.update(torch.zeros(3, 4, device="meta"))  # any device but the CPU: no copy back to the host
    assert statistics.feature_sum.device.type == "meta" and statistics.outer_sum.device.type == "meta"
    assert statistics.feature_sum.dtype == torch.float64


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_every_all_reduced_tensor_is_on_the_evaluation_device(model_dir, device, monkeypatch):
    """All-reduce as NCCL would: refuse any tensor that is not on the evaluation device."""
    import hf_vq.evaluation.fid as fid_module
    import hf_vq.evaluation.reconstruction as reconstruction_module
    import hf_vq.quantizers.usage

    reduced = []

    def strict_all_reduce(tensor):
        if tensor.device != torch.device(device) and not (device == "cuda" and tensor.is_cuda):
            raise RuntimeError(f"NCCL cannot reduce a {tensor.device} tensor")
        reduced.append((tensor.device.type, tensor.dtype))
        return tensor

    monkeypatch.setattr(reconstruction_module, "all_reduce_sum", strict_all_reduce)
    monkeypatch.setattr(fid_module, "all_reduce_sum", strict_all_reduce)
    monkeypatch.setattr(hf_vq.quantizers.usage, "all_reduce_sum", strict_all_reduce)
    model = hf_vq.VQVAEModel.from_pretrained(model_dir).to(device)
    images = [torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1]  # on the CPU, as a loader gives them
    results = evaluate_reconstruction(model, images, device=torch.device(device), progress=False,
                                      metrics=("usage", "psnr", "ssim", "rfid"),
                                      fid_feature_extractor=TinyFeatures().to(device))
    assert results["num_images"] == 7 and np.isfinite(results["rfid"])
    # images, usage counts, psnr, ssim; count + two sums for each of the two feature statistics
    assert len(reduced) == 4 + 6
    assert all(kind == torch.device(device).type for kind, _ in reduced)
