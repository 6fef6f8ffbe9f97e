"""TiTok training on the engine, shrunk: the single-stage recipe, stage 1 (proxy codes of a frozen
MaskGIT-VQGAN) and stage 2 (frozen encoder + quantizer, decoder fine-tuning)."""

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from hf_vq import MaskGITVQGANConfig, MaskGITVQGANModel, TiTokConfig, TiTokModel
from hf_vq.losses import ConvNeXtPerceptualLoss
from hf_vq.losses.perceptual import CONVNEXT_WEIGHT_FILE
from hf_vq.modules import MaskBitDiscriminator
from hf_vq.training import CheckpointFormatError, TrainConfig, run_training
from hf_vq.training.titok_objectives import copy_pixel_decoder

TINY_TITOK = {
    "model_type": "titok", "image_size": 16, "num_latent_tokens": 8, "patch_size": 4, "decoder_patch_size": 4,
    "encoder_hidden_size": 32, "encoder_num_layers": 1, "encoder_num_heads": 2,
    "decoder_hidden_size": 32, "decoder_num_layers": 1, "decoder_num_heads": 2, "codebook_size": 16, "codebook_dim": 4,
}
# The configs' MaskBit discriminator (loss.discriminator: maskbit), shrunk.
TINY_MASKBIT = {"hidden_channels": 32, "num_stages": 2, "blur_resample": True, "blur_kernel_size": 4}
TINY_MASKGIT = {"maskgit_base_channels": 32, "maskgit_channel_multipliers": [1, 1, 1], "maskgit_num_res_blocks": 1,
                "maskgit_z_channels": 8, "maskgit_codebook_size": 64}


IMAGES = []  # the image folder of this module (set by the autouse fixture)


@pytest.fixture(autouse=True)
def _images(image_dir):
    IMAGES[:] = [image_dir]


class TinyClassifier(torch.nn.Module):
    """Stands in for ConvNeXt-S (whose weights are not downloadable in CI): images -> 10 logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 4, 8, stride=8)
        self.head = torch.nn.Linear(4 * 28 * 28, 10)

    def forward(self, images):
        return self.head(self.conv(images).flatten(1))


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """24 small photographs' crops (scikit-image's astronaut and coffee), as a folder: loads in milliseconds."""
    import numpy as np
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for index in range(24):
        photo = (data.astronaut(), data.coffee())[index % 2]
        top, left = rng.integers(0, 300, size=2)
        Image.fromarray(photo[top:top + 96, left:left + 96]).save(folder / f"{index:02d}.png")
    return folder


@pytest.fixture(scope="module")
def proxy_dir(tmp_path_factory):
    """A tiny random MaskGIT-VQGAN standing in for maskgit-vqgan-imagenet-f16-256 (4x4 codes of 64 at 16 px)."""
    torch.manual_seed(0)
    proxy = MaskGITVQGANModel(MaskGITVQGANConfig(image_size=16, base_channels=32, channel_multipliers=[1, 1, 1],
                                                 num_res_blocks=1, codebook_dim=8, codebook_size=64))
    with torch.no_grad():  # spread the codes so that random images use many of them
        proxy.quantizer.codebook.normal_()
    path = tmp_path_factory.mktemp("proxy") / "maskgit-vqgan"
    proxy.save_pretrained(path)
    return path


def run(tmp_path, name, model, loss, steps=4, convnext_loss=None, **training):
    raw = {
        "output_dir": str(tmp_path / name), "seed": 0, "model": model, "loss": loss,
        "data": {"dataset": "imagefolder", "train_data_dir": str(IMAGES[0]), "eval_holdout": 8, "image_size": 16},
        "training": {"batch_size": 4, "max_steps": steps, "learning_rate": 1e-3, "optimizer": "adamw",
                     "weight_decay": 1e-4, "log_every": 1, **training},
        "eval": {"batch_size": 8, "num_grid_images": 4},
    }
    return run_training(TrainConfig.from_dict(raw), convnext_loss=convnext_loss)


def test_stage1_cross_entropy_against_proxy_codes_then_stage2_freezes_encoder(tmp_path, proxy_dir):
    model = {**TINY_TITOK, **TINY_MASKGIT, "decoder_type": "maskgit"}
    stage1 = run(tmp_path, "stage1", model, {"objective": "proxy_codes", "proxy_tokenizer": str(proxy_dir)}, steps=15)
    history = stage1.history
    assert {"proxy_cross_entropy", "proxy_accuracy", "quantizer_commitment", "total"} <= set(history[0])
    # 64 proxy codes: a fresh decoder starts near log(64) and learns the cells' codes.
    assert history[0]["proxy_cross_entropy"] == pytest.approx(torch.log(torch.tensor(64.0)).item(), abs=1.0)
    assert history[-1]["proxy_cross_entropy"] < history[0]["proxy_cross_entropy"] - 0.15

    # The loss is the cross-entropy of decode_logits against the proxy's codes (checked independently).
    trained = stage1.model.eval()
    proxy = MaskGITVQGANModel.from_pretrained(proxy_dir).eval()
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        logits = trained.decode_logits(trained.encode(images).quantized)
        codes = proxy.encode(images).indices
    assert logits.shape == (2, 64, 4, 4) and codes.shape == (2, 4, 4)
    manual = -(logits.log_softmax(dim=1).gather(1, codes[:, None]).mean())
    assert F.cross_entropy(logits, codes).item() == pytest.approx(manual.item(), rel=1e-6)
    # The proxy's codebook and decoder became the TiTok's pixel path, untouched by stage 1.
    assert torch.equal(trained.pixel_codebook, proxy.quantizer.codebook)
    for key, value in proxy.decoder.state_dict().items():
        assert torch.equal(trained.pixel_decoder.state_dict()[key], value)

    stage2 = run(tmp_path, "stage2", {"pretrained": str(stage1.output_dir)},
                 {"objective": "decoder_finetune", "reconstruction": "mse", "quantizer_weight": 0.0,
                  "convnext_weight": 0.1, "disc_weight": 0.01, "adaptive_disc_weight": False, "disc_start": 1,
                  "lecam_weight": 0.001, "discriminator": "maskbit", "discriminator_options": TINY_MASKBIT}, steps=3,
                 convnext_loss=ConvNeXtPerceptualLoss(network=TinyClassifier()), checkpoint_every=3)
    discriminator = load_file(stage2.output_dir / "checkpoints" / "checkpoint-00000003" / "discriminator.safetensors")
    assert set(discriminator) == set(MaskBitDiscriminator(**TINY_MASKBIT).state_dict())  # the configs' discriminator
    before = load_file(stage1.output_dir / "model.safetensors")
    after = load_file(stage2.output_dir / "model.safetensors")
    frozen = [key for key in before if key.startswith(("encoder.", "quantizer."))]
    trained_keys = [key for key in before if key.startswith(("decoder.", "pixel_decoder.", "pixel_codebook"))]
    assert frozen and trained_keys and set(frozen) | set(trained_keys) == set(before)
    for key in frozen:
        assert torch.equal(before[key], after[key]), key  # bit-identical: the same tokens as stage 1
    assert any(not torch.equal(before[key], after[key]) for key in trained_keys if key.startswith("decoder."))
    assert any(not torch.equal(before[key], after[key]) for key in trained_keys if key.startswith("pixel_decoder."))
    assert {"generator_adversarial", "discriminator", "convnext"} <= set(stage2.history[-1])
    with torch.no_grad():
        assert torch.equal(stage2.model.encode(images).indices, trained.encode(images).indices)


def test_single_stage_recipe_with_dead_code_restarts_and_gan(tmp_path):
    """The single-stage recipe with its official discriminator (MaskBit's, shrunk)."""
    model = {**TINY_TITOK, "decoder_type": "pixel", "l2_norm": False, "legacy_latent_layout": False,
             "zero_one_pixels": False, "dead_code_restarts": True}
    result = run(tmp_path, "single", model, {"reconstruction": "mse", "disc_weight": 0.1, "adaptive_disc_weight": False,
                                              "disc_start": 2, "lecam_weight": 0.001, "discriminator": "maskbit",
                                              "discriminator_options": TINY_MASKBIT}, steps=4, ema_decay=0.999,
                 max_grad_norm=1.0, checkpoint_every=4)
    assert [h["step"] for h in result.history] == [0, 1, 2, 3]
    assert "generator_adversarial" in result.history[-1] and "generator_adversarial" not in result.history[0]
    assert {"discriminator", "lecam", "logits_real"} <= set(result.history[-1])
    checkpoint = result.output_dir / "checkpoints" / "checkpoint-00000004"
    assert set(load_file(checkpoint / "discriminator.safetensors")) == set(MaskBitDiscriminator(**TINY_MASKBIT).state_dict())
    # The discriminator's AdamW has TiTok's official groups: its 9 biases and GroupNorm vectors without weight decay.
    groups = json.loads((checkpoint / "trainer_state.json").read_text())["optimizers"]["discriminator"]["param_groups"]
    assert [(len(group["params"]), group["weight_decay"]) for group in groups] == [(9, 0.0), (5, 1e-4)]
    usage = result.model.quantizer.behaviours[0].usage
    assert usage.sum() > 0  # the restart behaviour tracked code usage during training
    assert (result.output_dir / "reconstructions.png").is_file()


def test_stage_errors_name_the_fix(tmp_path, proxy_dir):
    with pytest.raises(ValueError, match="proxy_tokenizer"):
        TrainConfig.from_dict({"model": {**TINY_TITOK, **TINY_MASKGIT}, "loss": {"objective": "proxy_codes"}})
    with pytest.raises(ValueError, match="maskgit_codebook_size"):
        run(tmp_path, "bad-size", {**TINY_TITOK, **TINY_MASKGIT, "decoder_type": "maskgit", "maskgit_codebook_size": 32},
            {"objective": "proxy_codes", "proxy_tokenizer": str(proxy_dir)}, steps=1)
    with pytest.raises(ValueError, match='decoder_type "maskgit"'):
        run(tmp_path, "pixel", {**TINY_TITOK, "decoder_type": "pixel"},
            {"objective": "proxy_codes", "proxy_tokenizer": str(proxy_dir)}, steps=1)
    with pytest.raises(ValueError, match="model.pretrained"):
        run(tmp_path, "scratch", {**TINY_TITOK, "decoder_type": "pixel"}, {"objective": "decoder_finetune"}, steps=1)


def test_copy_pixel_decoder_refuses_other_shapes():
    titok = TiTokModel(TiTokConfig(**{k: v for k, v in TINY_TITOK.items() if k != "model_type"}, **TINY_MASKGIT))
    other = MaskGITVQGANModel(MaskGITVQGANConfig(image_size=16, base_channels=32, channel_multipliers=[1, 1, 1],
                                                 num_res_blocks=1, codebook_dim=16, codebook_size=64))
    before = titok.pixel_codebook.clone()
    assert not copy_pixel_decoder(other, titok)  # 16-dim codes do not fit an 8-channel pixel decoder
    assert torch.equal(titok.pixel_codebook, before)


def test_convnext_perceptual_loss_is_the_official_computation_and_needs_its_weights(tmp_path, monkeypatch):
    network = TinyClassifier()
    loss = ConvNeXtPerceptualLoss(network=network)
    a, b = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    # Written out as the official PerceptualLoss("convnext_s") does on [0, 1] images.
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def official_features(images01):
        resized = F.interpolate(images01, size=224, mode="bilinear", align_corners=False, antialias=True)
        return network((resized - mean) / std)

    expected = F.mse_loss(official_features((a + 1) / 2), official_features((b + 1) / 2))
    assert loss(a, b).item() == pytest.approx(expected.item(), rel=1e-6)
    assert not any(p.requires_grad for p in loss.parameters())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=CONVNEXT_WEIGHT_FILE):
        ConvNeXtPerceptualLoss()


def test_resuming_a_checkpoint_with_the_former_discriminator_grouping_names_the_problem(tmp_path):
    """A TiTok + PatchGAN checkpoint as hf_vq wrote it before the discriminator's weight-decay groups and
    loss.discriminator_options existed: one discriminator parameter group, no options key in its config."""
    model = {**TINY_TITOK, "decoder_type": "pixel"}
    loss = {"reconstruction": "mse", "disc_weight": 0.1, "adaptive_disc_weight": False, "disc_start": 0,
            "disc_layers": 2, "disc_channels": 8}
    first = run(tmp_path, "old", model, loss, steps=2, checkpoint_every=2)
    state_file = first.output_dir / "checkpoints" / "checkpoint-00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    groups = state["optimizers"]["discriminator"]["param_groups"]
    assert len(groups) == 2  # this version's layout, rewritten below into the former one
    merged = sorted(index for group in groups for index in group["params"])
    state["optimizers"]["discriminator"]["param_groups"] = [{**groups[1], "params": merged}]
    del state["optimizers"]["discriminator"]["param_group_names"]  # stored since; the former checkpoints had none
    state["schedulers"]["discriminator"]["base_lrs"] = state["schedulers"]["discriminator"]["base_lrs"][:1]
    state["schedulers"]["discriminator"]["_last_lr"] = state["schedulers"]["discriminator"]["_last_lr"][:1]
    del state["config"]["loss"]["discriminator_options"]
    state_file.write_text(json.dumps(state))

    resume = {"resume_from": "latest", "checkpoint_every": 2}
    with pytest.raises(CheckpointFormatError, match=rf"(?s)discriminator optimizer.*\[{len(merged)}\] parameters.*"
                                                    r"\[\d+, \d+\].*older hf_vq.*--resume-allow-changes"):
        run(tmp_path, "old", model, loss, steps=4, **resume)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = run(tmp_path, "old", model, loss, steps=4, resume_allow_changes=True, **resume)
    messages = [str(w.message) for w in caught]
    assert any("moments restart from zero" in m for m in messages)
    assert not any("discriminator_options" in m for m in messages)  # absent = the former behaviour, not a change
    assert [h["step"] for h in resumed.history] == [0, 1, 2, 3]
    # Both groups follow the schedule after the resume (a one-group schedule would leave the second behind).
    later = json.loads((resumed.output_dir / "checkpoints" / "checkpoint-00000004" / "trainer_state.json").read_text())
    new_groups = later["optimizers"]["discriminator"]["param_groups"]
    assert [g["weight_decay"] for g in new_groups] == [0.0, 1e-4]
    assert len({g["lr"] for g in new_groups}) == 1 and len(later["schedulers"]["discriminator"]["base_lrs"]) == 2
