"""examples/iu_experiment.py --quick at the smallest scale: every stage runs for VQGAN-LC (stand-in codebook
built, trained) and for a saved model folder (loaded); the table, results and plot are written, and the
scores it reports agree with an independent computation on the samples it saved."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
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
    with pytest.raises(ValueError, match="decodes teacher features, not images"):
        example.train_or_load_tokenizer("vqkd-clip", REPO / "configs" / "iu" / "vqkd-clip.yaml", None, tmp_path, args, None)
    # VQ-KD with its stage-2 pixel decoder decodes images: its recipe and its saved config are accepted.
    stage2 = yaml.safe_load((REPO / "configs" / "iu" / "vqkd-clip-pixel-decoder.yaml").read_text())["model"]
    example.check_decodes_pixels("vqkd-clip-pixel-decoder", stage2)
    example.check_decodes_pixels("saved", {"model_type": "vqkd", "pixel_decoder": stage2["pixel_decoder"]})
    with pytest.raises(ValueError, match="decodes teacher features, not images"):
        example.check_decodes_pixels("saved", {"model_type": "vqkd", "pixel_decoder": None})


def test_every_quick_recipe_builds_and_its_gan_runs_at_the_quick_size(tmp_path):
    """The --quick shrink of each default recipe gives a valid config whose model and discriminator run at 16 px."""
    from safetensors.torch import save_file

    from hf_vq.modules import build_discriminator
    from hf_vq.training import TrainConfig, build_model

    example = load_example()
    save_file({"codebook": torch.randn(33, 12)}, str(tmp_path / "codebook.safetensors"))
    args = example.parse_args(["--quick", "--codebook", str(tmp_path / "codebook.safetensors")])
    for name in example.DEFAULT_TOKENIZERS.split(","):
        _, path, _ = example.resolve_tokenizer(name)
        config = TrainConfig.from_dict(example.tokenizer_config(name, path, tmp_path / name, args))
        model = build_model(config.model)
        pixels = torch.rand(2, 3, 16, 16) * 2 - 1
        assert model(pixels).reconstruction.shape == pixels.shape
        loss = config.loss
        discriminator = build_discriminator(loss.discriminator, 3, config.data.image_size, loss.disc_layers, loss.disc_channels)
        assert torch.isfinite(discriminator(pixels)).all(), name
        assert 0 < loss.disc_start < config.training.max_steps  # the GAN is on for the second half
