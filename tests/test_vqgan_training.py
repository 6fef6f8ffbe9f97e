"""The two ImageNet-256 VQGAN recipes, shrunk, train a few steps with the GAN loss on."""

from pathlib import Path

import lpips
import numpy as np
import pytest
import yaml

from hf_vq.losses import LPIPSLoss
from hf_vq.training import TrainConfig, run_training

REPO = Path(__file__).resolve().parents[1]
SHRUNK_MODEL = {"image_size": 16, "base_channels": 32, "channel_multipliers": [1, 2], "z_channels": 32, "codebook_size": 64}


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.mark.parametrize("recipe", ["vqgan-taming", "vqgan-llamagen"])
def test_shrunk_recipe_trains_with_gan_loss_on(recipe, tmp_path):
    raw = yaml.safe_load((REPO / "configs" / "imagenet256" / f"{recipe}.yaml").read_text())
    raw["model"].update(SHRUNK_MODEL)
    if raw["model"]["model_type"] == "vqgan":
        raw["model"].update(attn_resolutions=[8], codebook_dim=8)
    raw["data"] = {"dataset": "embedded", "image_size": 16, "max_eval_images": 16}
    raw["training"].update(batch_size=4, max_steps=4, mixed_precision="no", log_every=1, resume_from=None,
                           checkpoint_every=100, log_images_every=100)
    raw["loss"].update(disc_start=2, disc_layers=2, disc_channels=8)  # the recipe's losses, GAN on from step 2
    raw["output_dir"] = str(tmp_path / recipe)

    network = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)  # random VGG trunk: no download in CI
    dropout_modes = []  # LPIPS's dropout runs in the steps, as in the official training (loss.perceptual_dropout)
    network.lin0.model[0].register_forward_hook(lambda module, inputs, output: dropout_modes.append(module.training))
    result = run_training(TrainConfig.from_dict(raw), perceptual_loss=LPIPSLoss(network=network))
    assert raw["loss"]["perceptual_dropout"] is True and dropout_modes and all(dropout_modes)

    history = result.history
    assert [h["step"] for h in history] == [0, 1, 2, 3]
    assert all("generator_adversarial" not in h for h in history[:2])
    for entry in history[2:]:
        assert {"generator_adversarial", "discriminator", "lpips"} <= set(entry)
        assert np.isfinite(entry["total"]) and np.isfinite(entry["discriminator"])
        if raw["loss"]["adaptive_disc_weight"]:
            assert entry["adversarial_weight"] > 0
        else:
            assert entry["adversarial_weight"] == pytest.approx(raw["loss"]["disc_weight"])
    assert (result.output_dir / "model.safetensors").is_file()
