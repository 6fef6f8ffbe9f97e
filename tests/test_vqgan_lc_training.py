"""configs/imagenet256/vqgan-lc.yaml, shrunk, trains on the engine: the frozen codebook from a
build-codebook file stays bit-identical, the projector / encoder / decoder learn, the final
evaluation reports codebook usage, and the saved model reloads with the same codebook."""

from pathlib import Path

import lpips
import pytest
import torch
import yaml
from safetensors.torch import save_file
from transformers import AutoModel

from hf_vq.losses import LPIPSLoss
from hf_vq.training import ConfigError, TrainConfig, build_model, run_training

REPO = Path(__file__).resolve().parents[1]
SHRUNK_MODEL = {"image_size": 16, "base_channels": 32, "channel_multipliers": [1, 2], "z_channels": 32,
                "attn_resolutions": [8], "codebook_size": 64, "codebook_feature_dim": 12, "codebook_dim": 4}


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def _shrunk_raw(tmp_path):
    raw = yaml.safe_load((REPO / "configs" / "imagenet256" / "vqgan-lc.yaml").read_text())
    codebook = torch.randn(64, 12, generator=torch.Generator().manual_seed(3))
    save_file({"codebook": codebook}, str(tmp_path / "codebook.safetensors"))
    raw["model"].update(SHRUNK_MODEL, codebook=str(tmp_path / "codebook.safetensors"))
    raw["data"] = {"dataset": "embedded", "image_size": 16, "max_eval_images": 32}
    raw["training"].update(batch_size=4, max_steps=3, warmup_steps=1, log_every=1, resume_from=None,
                           checkpoint_every=100, log_images_every=100)
    raw["loss"].update(disc_start=1, disc_channels=8)  # the recipe's losses, GAN on from step 1
    raw["output_dir"] = str(tmp_path / "run")
    return raw, codebook


def test_recipe_keeps_the_frozen_codebook_trains_the_rest_and_reports_usage(tmp_path):
    raw, codebook = _shrunk_raw(tmp_path)
    config = TrainConfig.from_dict(raw)
    initial = build_model(config.model)
    assert torch.equal(initial.quantizer.frozen_codebook, codebook)
    assert not any(p is initial.quantizer.frozen_codebook for p in initial.parameters())  # a buffer, no optimizer sees it

    torch.manual_seed(0)
    model = build_model(config.model)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    network = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)  # random VGG trunk: no download in CI
    result = run_training(config, model=model, perceptual_loss=LPIPSLoss(network=network))

    trained = model.state_dict()
    assert torch.equal(trained["quantizer.frozen_codebook"], codebook)  # bit-identical after training
    for name in ("quantizer.codebook_projection.weight", "quant_conv.weight", "encoder.conv_in.weight",
                 "decoder.conv_out.weight", "post_quant_conv.weight"):
        assert not torch.equal(trained[name], start[name]), f"{name} did not train"
    history = result.history
    assert {"generator_adversarial", "discriminator", "lpips", "quantizer_codebook", "quantizer_commitment"} <= set(history[-1])

    metrics = result.metrics
    assert 0 < metrics["codebook_usage"] <= 1 and "perplexity" in metrics

    loaded = AutoModel.from_pretrained(result.output_dir).eval()
    assert loaded.config.model_type == "vqgan_lc" and loaded.config.codebook_source.endswith("codebook.safetensors")
    assert torch.equal(loaded.quantizer.frozen_codebook, codebook)
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.encode(pixels).indices, model.encode(pixels).indices)


def test_codebook_key_is_checked(tmp_path):
    raw, _ = _shrunk_raw(tmp_path)
    del raw["model"]["codebook"]
    with pytest.raises(ConfigError, match="needs its frozen codebook.*build-codebook"):
        TrainConfig.from_dict(raw)
    with pytest.raises(ConfigError, match="goes with a fresh model of type vqgan_lc"):
        TrainConfig.from_dict({"model": {"model_type": "vqgan", "codebook": "x.safetensors"}})
    raw["model"]["codebook"] = str(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.safetensors.*hf-vq build-codebook"):
        build_model(TrainConfig.from_dict(raw).model)
    save_file({"codebook": torch.zeros(10, 12)}, str(tmp_path / "small.safetensors"))
    raw["model"]["codebook"] = str(tmp_path / "small.safetensors")
    with pytest.raises(ValueError, match=r"\(64, 12\).*--codes 64"):
        build_model(TrainConfig.from_dict(raw).model)
