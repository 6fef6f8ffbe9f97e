"""examples/iu_experiment.py --quick at the smallest scale: every stage runs for VQGAN-LC (stand-in codebook
built, trained), for a saved model folder (loaded) and for the two-stage semantic tokenizers VQ-KD and Cluster
(stage 1 on the random stand-in teacher, then the pixel decoder); the table, results and plot are written, and
what it reports agrees with independent computations on the files it saved."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from datasets import load_from_disk
from PIL import Image

import hf_vq

REPO = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("iu_experiment", REPO / "examples" / "iu_experiment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TinyInception(torch.nn.Module):
    """Stands in for the FID Inception (features and class logits); its weights cannot be downloaded in CI."""

    description = "test conv features + 5-way head"

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)
        self.head = torch.nn.Linear(6, 5)

    def forward(self, images):
        return self.conv(images).tanh().mean((2, 3))

    def class_logits(self, images):
        return 4 * self.head(self(images))


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def test_quick_experiment_runs_every_stage_and_reports_what_it_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path / "cache"))
    example = load_example()
    torch.manual_seed(0)
    saved = tmp_path / "saved-fsq"
    hf_vq.FSQVAEModel(hf_vq.FSQVAEConfig(hidden_dim=16, levels=[5, 4, 3], image_size=16)).save_pretrained(saved)
    network = TinyInception()
    out = tmp_path / "iu"
    results = example.main(
        ["--quick", "--tokenizers", f"vqgan_lc,{saved}", "--tokenizer-steps", "2", "--ar-steps", "2",
         "--num-samples", "11", "--eval-images", "16", "--max-images", "66", "--output-dir", str(out)],
        fid_feature_extractor=network, inception_classifier=network)

    assert list(results) == ["vqgan_lc", "saved-fsq"]
    lc, fsq = results["vqgan_lc"], results["saved-fsq"]
    assert lc["model_type"] == "vqgan_lc" and lc["stand_in_codebook"] and lc["codebook_size"] == 11 * 16
    assert (lc["tokenizer_steps"], lc["gpt_steps"], fsq["tokenizer_steps"]) == (2, 2, "loaded")
    for result in results.values():
        assert 0 < result["tokenizer_metrics"]["codebook_usage"] <= 1 and np.isfinite(result["tokenizer_metrics"]["rfid"])
        assert result["generation"]["num_samples"] == 11 and np.isfinite(result["generation"]["gfid"])
    # Every stage left its output: the frozen codebook file, the tokens, the GPT, the samples.
    assert (out / "vqgan_lc" / "codebook.safetensors").is_file() and (out / "vqgan_lc" / "tokens").is_dir()
    assert (out / "saved-fsq" / "gpt" / "model.safetensors").is_file()

    # The Inception Score of the saved samples, recomputed here with numpy from the PNG files.
    files = sorted((out / "vqgan_lc" / "samples").glob("*.png"))
    assert len(files) == 11
    images = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = network.class_logits(images.float() / 255).double().numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected_is = np.exp((p * (np.log(p) - np.log(p.mean(0, keepdims=True)))).sum(1).mean())
    assert lc["generation"]["inception_score"] == pytest.approx(expected_is, rel=1e-5)

    table = (out / "iu_table.md").read_text()
    assert "| Tokenizer | Model | Codes | Usage | PSNR | rFID | gFID | IS |" in table
    assert "vqgan_lc (random stand-in teacher codebook)" in table and "| saved-fsq | fsq_vae | 60 |" in table
    assert f"{lc['generation']['gfid']:.2f}" in table and "n/a" not in table
    assert json.loads((out / "iu_results.json").read_text())["vqgan_lc"]["codebook_size"] == 176
    with Image.open(out / "iu_plot.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 100


def test_quick_experiment_trains_both_stages_of_vqkd_and_cluster_on_a_labelled_stand_in_teacher(tmp_path, monkeypatch):
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    from hf_vq.data import EvalTransform, load_embedded_dataset
    from hf_vq.data.transforms import center_crop_arr

    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path / "cache"))
    example = load_example()
    network = TinyInception()
    out = tmp_path / "iu"
    results = example.main(
        ["--quick", "--tokenizers", "vqkd_clip,cluster_clip", "--tokenizer-steps", "2", "--ar-steps", "2",
         "--num-samples", "11", "--eval-images", "16", "--max-images", "33", "--output-dir", str(out)],
        fid_feature_extractor=network, inception_classifier=network)

    assert list(results) == ["vqkd_clip", "cluster_clip"]
    stand_in = out / "random-clip-stand-in"
    teacher_config = AutoConfig.from_pretrained(stand_in)
    assert teacher_config.model_type == "clip" and teacher_config.vision_config.patch_size == 2
    train_images = load_embedded_dataset("train", num_patches=33)["image"]
    eval_images = load_embedded_dataset("validation")["image"][:16]
    for name, model_type in (("vqkd_clip", "vqkd"), ("cluster_clip", "vq_cluster")):
        result, run = results[name], out / name
        assert result["model_type"] == model_type and result["codebook_size"] == 512
        assert result["tokenizer_steps"] == [2, 2] and result["gpt_steps"] == 2
        # Stage 1 learned from the stand-in, named explicitly in its config; the row says so.
        assert Path(result["teacher"]) == stand_in.resolve() and result["stand_in_teacher"]
        stage1 = AutoModel.from_pretrained(run / "stage1").eval()
        assert not stage1.decodes_pixels and Path(result["teacher"]) == Path(
            stage1.config.teacher_name_or_path if model_type == "vqkd" else stage1.config.teacher)
        # Stage 2 added a pixel decoder; every stage-1 weight is bit-identical in the saved files.
        before, after = load_file(run / "stage1" / "model.safetensors"), load_file(run / "tokenizer" / "model.safetensors")
        assert before and set(after) - set(before) and all(k.startswith("pixel_decoder.") for k in set(after) - set(before))
        for key, value in before.items():
            assert torch.equal(after[key], value), (name, key)
        # The tokens file holds the stage-1 model's codes of the center-cropped training images.
        views = torch.from_numpy(np.stack([center_crop_arr(i.convert("RGB"), 16) for i in train_images]))
        with torch.no_grad():
            expected = stage1.encode(views.permute(0, 3, 1, 2).float() / 127.5 - 1).indices.flatten(1)
        tokens = np.array(load_from_disk(str(run / "tokens"))["input_ids"])
        assert tokens.shape == (33, 64) and np.array_equal(tokens, expected.numpy())
        # Usage of the held-out images: the share of codes a bincount of their stage-1 codes finds.
        with torch.no_grad():
            codes = stage1.encode(torch.stack([EvalTransform(16)(i) for i in eval_images])).indices
        counts = np.bincount(codes.flatten().numpy(), minlength=512)
        assert result["tokenizer_metrics"]["codebook_usage"] == pytest.approx((counts > 0).mean())
        assert result["stage1_metrics"]["codebook_usage"] == pytest.approx((counts > 0).mean())
        # Samples: images decoded by the pixel decoder, one PNG per sample.
        files = sorted((run / "samples").glob("*.png"))
        assert len(files) == 11
        for file in files:
            with Image.open(file) as image:
                assert image.size == (16, 16) and image.mode == "RGB"
        assert np.isfinite(result["generation"]["gfid"]) and np.isfinite(result["tokenizer_metrics"]["psnr"])
    table = (out / "iu_table.md").read_text()
    assert "| vqkd_clip (random stand-in teacher) | vqkd | 512 |" in table and "| 2 + 2 / 2 |" in table
    assert "| cluster_clip (random stand-in teacher) | vq_cluster | 512 |" in table
    assert "their codes carry no semantics" in table and str(stand_in) in table


def test_missing_inception_weights_read_na_with_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    example = load_example()
    args = example.parse_args(["--quick"])
    extractor, classifier, missing = example.load_networks(args)
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    assert extractor is None and classifier is None and missing == f"n/a (weights missing: {expected})"
    row = {"model_type": "vqgan", "codebook_size": 512, "tokenizer_steps": 3, "gpt_steps": 2,
           "tokenizer_metrics": {"codebook_usage": 0.5, "psnr": 20.0}, "generation": {"num_samples": 4}}
    table = example.results_table({"vqgan": row}, missing)
    assert table.count(missing) == 3 and "50.00%" in table and "20.00" in table  # rFID, gFID, IS
    with pytest.raises(SystemExit):
        example.parse_args([])  # the full run needs --data
    with pytest.raises(ValueError, match="not a recipe"):
        example.resolve_tokenizer(str(tmp_path / "nothing"))
    # A stage-1 YAML is trained in two stages when its stage-2 recipe lies next to it; alone it is refused.
    iu = REPO / "configs" / "iu"
    assert example.resolve_tokenizer(str(iu / "vqkd-dino.yaml"))[1] == [iu / "vqkd-dino.yaml", iu / "vqkd-dino-pixel-decoder.yaml"]
    lone = tmp_path / "vqkd-clip.yaml"
    lone.write_text((iu / "vqkd-clip.yaml").read_text())
    assert example.resolve_tokenizer(str(lone)) == ("vqkd-clip", [lone], None)
    with pytest.raises(ValueError, match="decodes teacher features, not images"):
        example.train_or_load_tokenizer("vqkd-clip", [lone], None, tmp_path, args, None)
    with pytest.raises(ValueError, match="stage-2 recipe"):
        example.tokenizer_config("x", iu / "cluster-clip-pixel-decoder.yaml", tmp_path, args)
    # VQ-KD with its stage-2 pixel decoder decodes images: its recipe and its saved config are accepted.
    stage2 = yaml.safe_load((REPO / "configs" / "iu" / "vqkd-clip-pixel-decoder.yaml").read_text())["model"]
    example.check_decodes_pixels("vqkd-clip-pixel-decoder", stage2)
    example.check_decodes_pixels("saved", {"model_type": "vqkd", "pixel_decoder": stage2["pixel_decoder"]})
    with pytest.raises(ValueError, match="decodes teacher features, not images"):
        example.check_decodes_pixels("saved", {"model_type": "vqkd", "pixel_decoder": None})


def test_every_quick_recipe_builds_and_its_gan_runs_at_the_quick_size(tmp_path):
    """The --quick shrink of each default recipe gives a valid config whose model and discriminator run at 16 px;
    a semantic tokenizer's stage 1 codes an 8 x 8 grid (the stand-in teacher's) and its stage 2 decodes it."""
    from safetensors.torch import save_file

    from hf_vq.modules import build_discriminator
    from hf_vq.training import TrainConfig, build_model, build_stage2_model

    example = load_example()
    save_file({"codebook": torch.randn(33, 12)}, str(tmp_path / "codebook.safetensors"))
    args = example.parse_args(["--quick", "--codebook", str(tmp_path / "codebook.safetensors"), "--output-dir",
                               str(tmp_path)])
    example.stand_in_teacher(tmp_path)
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    names = example.DEFAULT_TOKENIZERS.split(",")
    assert {"vqkd_clip", "cluster_clip"} <= set(names)
    for name in names:
        _, paths, _ = example.resolve_tokenizer(name)
        stage1_dir = None
        if len(paths) == 2:  # stage 1: codes from the teacher, no pixels, no GAN
            config = TrainConfig.from_dict(example.tokenizer_config(name, paths[0], tmp_path / name, args, output="stage1"))
            assert config.loss.disc_weight == 0 and config.training.max_steps == example.QUICK_STAGE1_STEPS
            stage1 = build_model(config.model)
            assert stage1.encode(pixels).indices.shape == (2, 8, 8)
            stage1_dir = tmp_path / name / "stage1"
            stage1.save_pretrained(stage1_dir)
        config = TrainConfig.from_dict(example.tokenizer_config(name, paths[-1], tmp_path / name, args, stage1_dir=stage1_dir))
        model = build_stage2_model(config.model) if stage1_dir else build_model(config.model)
        assert model(pixels).reconstruction.shape == pixels.shape
        loss = config.loss
        discriminator = build_discriminator(loss.discriminator, 3, config.data.image_size, loss.disc_layers, loss.disc_channels)
        assert torch.isfinite(discriminator(pixels)).all(), name
        assert 0 < loss.disc_start < config.training.max_steps  # the GAN is on for the second half


def test_teacher_flags_name_the_teacher_of_each_semantic_tokenizer(tmp_path):
    """--teacher PATH for every semantic tokenizer, --teacher NAME=PATH for one; written to the key each config uses.
    Without --teacher, --quick takes the stand-in explicitly and a full run the teacher its config names."""
    example = load_example()
    iu = REPO / "configs" / "iu"
    args = example.parse_args(["--data", "ILSVRC/imagenet-1k", "--teacher", "/models/clip-b16",
                               "--teacher", "vqkd_clip=/models/other-clip"])
    assert args.teachers == {None: "/models/clip-b16", "vqkd_clip": "/models/other-clip"}
    vqkd = example.tokenizer_config("vqkd_clip", iu / "vqkd-clip.yaml", tmp_path, args, output="stage1")
    cluster = example.tokenizer_config("cluster_clip", iu / "cluster-clip.yaml", tmp_path, args, output="stage1")
    assert vqkd["model"]["teacher_name_or_path"] == "/models/other-clip" and cluster["model"]["teacher"] == "/models/clip-b16"
    assert vqkd["training"]["max_steps"] == 250_000 and vqkd["output_dir"] == str(tmp_path / "stage1")
    stage2 = example.tokenizer_config("vqkd_clip", iu / "vqkd-clip-pixel-decoder.yaml", tmp_path, args,
                                      stage1_dir=tmp_path / "stage1")
    assert stage2["model"]["stage1_from"] == str(tmp_path / "stage1") and "teacher" not in stage2["model"]

    full = example.parse_args(["--data", "ILSVRC/imagenet-1k"])
    config = example.tokenizer_config("cluster_clip", iu / "cluster-clip.yaml", tmp_path, full, output="stage1")
    assert config["model"]["teacher"] == "openai/clip-vit-base-patch16"  # the config's own, never a stand-in
    quick = example.parse_args(["--quick", "--output-dir", str(tmp_path / "out")])
    assert example.teacher_for("cluster_clip", quick) == str((tmp_path / "out" / "random-clip-stand-in").resolve())
    with pytest.raises(SystemExit):
        example.parse_args(["--quick", "--teacher", "vqkd_clip="])
    for tokenizers, teacher in (("vqgan,cluster_clip", "cluster=/x"), ("vqgan", "/x")):  # a typo; nothing to teach
        with pytest.raises(ValueError, match="would be unused"):
            example.main(["--quick", "--tokenizers", tokenizers, "--teacher", teacher, "--output-dir", str(tmp_path / "o")],
                         fid_feature_extractor=TinyInception())
