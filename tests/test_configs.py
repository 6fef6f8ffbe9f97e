"""Every YAML under configs/ is a valid training config whose model builds and runs (shrunk)."""

from pathlib import Path

import pytest
import torch
import yaml

from hf_vq.models.titok import TiTokConfig
from hf_vq.modules import build_discriminator
from hf_vq.training import DEMO_CONFIG, build_model, load_config

REPO = Path(__file__).resolve().parents[1]
# Tokenizer configs (configs/ar/ holds GPT configs, tested in test_trainer_ar.py).
TOKENIZER_CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.yaml") if p.relative_to(REPO / "configs").parts[0] != "ar")


def _needs_trained_model(path: Path) -> bool:
    """Configs that cannot be built from the YAML alone offline, each checked by its own test: semantic tokenizers (a
    frozen teacher, or a trained stage-1 model for their pixel decoder; tests/test_vq_cluster.py, test_vqkd_training.py)
    and fine-tuning of a trained model (`model.pretrained`: TiTok stage 2, test_titok_recipes_follow_the_official_configs)."""
    model = yaml.safe_load(path.read_text()).get("model") or {}
    return "teacher" in model or "stage1_from" in model or "pretrained" in model


CONFIGS = [path for path in TOKENIZER_CONFIGS if not _needs_trained_model(path)]
IMAGENET64 = sorted((REPO / "configs" / "imagenet64").glob("*.yaml"))
TITOK = sorted((REPO / "configs" / "imagenet256").glob("titok-*.yaml"))


# Small values for the size fields a model config has (SimpleCNN: hidden_dim; VQGAN family: base_channels to
# channel_multipliers; the ViT tokenizers (TiTok, VQ-KD): the encoder_* / decoder_* sizes; TiTok's MaskGIT sizes).
SHRINK = {"hidden_dim": 16, "base_channels": 32, "z_channels": 32, "channel_multipliers": [1, 2], "image_size": 16,
          "encoder_hidden_size": 32, "encoder_num_layers": 1, "encoder_num_heads": 2, "decoder_hidden_size": 32,
          "decoder_num_layers": 1, "decoder_num_heads": 2, "maskgit_base_channels": 32, "maskgit_num_res_blocks": 1,
          "maskgit_z_channels": 8}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_loads_and_its_shrunk_model_trains_one_step(path, tmp_path):
    config = load_config(path)  # unknown keys would raise here
    shrunk = {**config.model, **{key: value for key, value in SHRINK.items() if key in config.model}}
    if "codebook" in shrunk:  # VQGAN-LC: a small frozen codebook file stands in for the build-codebook output
        from safetensors.torch import save_file

        shrunk.update(codebook_size=32, codebook=str(tmp_path / "codebook.safetensors"))
        save_file({"codebook": torch.randn(32, shrunk["codebook_feature_dim"])}, shrunk["codebook"])
    model = build_model(shrunk)
    assert model.config.model_type == config.model["model_type"]
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    inputs = {}
    if config.model["model_type"] == "vqkd":  # distils a teacher: its features are the target (teacher not loaded here)
        tokens = (16 // model.config.patch_size) ** 2
        inputs["teacher_features"] = torch.randn(2, tokens, model.config.teacher_feature_dim)
    output = model(pixels, **inputs)
    assert torch.isfinite(output.loss)
    output.loss.backward()


def test_imagenet64_grid_is_complete_and_follows_the_benchmark_recipe():
    names = {p.stem for p in IMAGENET64}
    # Every row of the benchmark's docs/benchmark-imagenet64.md, plus two that are not (said in their headers).
    assert names == {
        "vq_d64_k512", "vq_d64_k2048", "vq_d64_k16384", "vq_d8_k2048", "vq_d8_k16384", "vq_l2_d64_k2048",
        "vq_l2_d64_k16384", "vq_entropy_d64_k2048", "vq_entropy_d64_k16384", "fsq_8-8-8", "fsq_8-5-5-5",
        "fsq_8-8-8-6-5", "lfq_d9", "lfq_d11", "lfq_d14", "simvq_k512", "simvq_k2048", "simvq_k16384",
        "ibq_d64_k512", "ibq_d64_k2048", "ibq_d64_k16384",
        "vq_ema_d64_k512", "cvq_d64_k512",
    }
    for stem in ("vq_ema_d64_k512", "cvq_d64_k512"):
        assert "NOT a row of the benchmark's ImageNet-64 table" in (REPO / "configs" / "imagenet64" / f"{stem}.yaml").read_text()
    for path in IMAGENET64:
        config = load_config(path)
        assert config.seed == 8888 and config.data.image_size == 64 and config.model["hidden_dim"] == 256
        assert (config.training.learning_rate, config.training.batch_size, config.training.max_steps) == (4e-4, 256, 500_000)
        assert config.model["reconstruction_loss"] == "mse" and config.loss.disc_weight == 0
        assert config.data.train_crop == "adm_random" and config.data.min_crop_scale == 0.8  # short side in [64, 80]
        if path.stem.startswith("vq_l2"):
            assert config.model["l2_norm"] == "search"  # the benchmark normalises for the search only
        if path.stem.startswith("vq_entropy"):  # its configs/imagenet64/vqvae.yaml: coef_entropy 0.0, cited
            assert config.model["entropy_weight"] == 0.0 and "coef_entropy: 0.0" in path.read_text()
        if path.stem.startswith(("ibq", "lfq")):  # its ibqvae.yaml / lfqvae.yaml: coef_entropy 0.1
            assert config.model["entropy_weight"] == 0.1
        model_config = build_model({**config.model, "hidden_dim": 8}).config
        if config.model["model_type"] == "fsq_vae":
            assert "commitment_beta" not in config.model  # FSQ: commitment weight 0 (no such term)
        else:
            assert model_config.commitment_beta == 0.25
    sizes = {p.stem: build_model({**load_config(p).model, "hidden_dim": 8}).config.codebook_size for p in IMAGENET64}
    assert sizes["fsq_8-8-8-6-5"] == 15360 and sizes["lfq_d14"] == 16384 and sizes["fsq_8-5-5-5"] == 1000
    assert load_config(REPO / "configs" / "imagenet64" / "vq_ema_d64_k512.yaml").model["ema_count_init"] == 0.0


def test_dataset_name_is_another_spelling_of_dataset(tmp_path):
    from hf_vq.training import TrainConfig

    config = TrainConfig.from_dict({"model": {"model_type": "vqvae"}, "data": {"dataset_name": "ILSVRC/imagenet-1k"}})
    assert config.data.dataset == "ILSVRC/imagenet-1k"
    with pytest.raises(ValueError, match="keep only"):
        TrainConfig.from_dict({"model": {"model_type": "vqvae"}, "data": {"dataset_name": "a", "dataset": "b"}})


def test_demo_yaml_mirrors_the_embedded_default():
    assert yaml.safe_load((REPO / "configs" / "demo" / "vqvae.yaml").read_text()) == DEMO_CONFIG
    assert load_config(REPO / "configs" / "demo" / "vqvae.yaml") == load_config(None)


def assert_official_discriminator(loss):
    """The official losses build NLayerDiscriminator() (MaskBit's, its defaults: 1,909,889 parameters)."""
    assert loss.discriminator == "maskbit" and loss.discriminator_options == {
        "hidden_channels": 128, "num_stages": 3, "blur_resample": True, "blur_kernel_size": 4, "zero_one_pixels": True}
    discriminator = build_discriminator(loss.discriminator, 3, options=loss.discriminator_options)
    assert sum(p.numel() for p in discriminator.parameters()) == 1_909_889


def test_titok_recipes_follow_the_official_configs():
    """bytedance/1d-tokenizer configs/training/TiTok/stage{1,2}/titok_{s128,b64,l32}.yaml, and the vq8k single stage."""
    assert {p.stem for p in TITOK} == {f"titok-{v}-stage{s}" for v in ("s128", "b64", "l32") for s in (1, 2)} | {
        "titok-bl64-vq8k-single-stage", "titok-bl64-conv-single-stage"}
    sizes = {"s128": (512, 8, 8, 128), "b64": (768, 12, 12, 64), "l32": (1024, 24, 16, 32)}
    for variant, (width, depth, heads, tokens) in sizes.items():
        stage1 = load_config(REPO / "configs" / "imagenet256" / f"titok-{variant}-stage1.yaml")
        model = stage1.model
        assert (model["encoder_hidden_size"], model["encoder_num_layers"], model["encoder_num_heads"]) == (width, depth, heads)
        assert (model["decoder_hidden_size"], model["decoder_num_layers"], model["decoder_num_heads"]) == (width, depth, heads)
        assert model["num_latent_tokens"] == tokens and (model["codebook_size"], model["codebook_dim"]) == (4096, 12)
        assert model["l2_norm"] and model["decoder_type"] == "maskgit" and model["maskgit_codebook_size"] == 1024
        assert stage1.loss.objective == "proxy_codes" and stage1.loss.proxy_tokenizer and stage1.loss.quantizer_weight == 1
        assert stage1.loss.disc_weight == 0 and stage1.loss.lpips_weight == 0
        args = stage1.training
        assert (args.learning_rate, args.adam_beta2, args.weight_decay, args.warmup_steps, args.max_steps) == (
            1e-4, 0.99, 1e-4, 10_000, 1_000_000)
        stage2 = load_config(REPO / "configs" / "imagenet256" / f"titok-{variant}-stage2.yaml")
        assert stage2.model == {"pretrained": stage1.output_dir}  # stage 2 starts from stage 1's output
        loss = stage2.loss
        assert loss.objective == "decoder_finetune" and loss.quantizer_weight == 0 and loss.reconstruction == "mse"
        assert (loss.disc_weight, loss.adaptive_disc_weight, loss.disc_start, loss.lecam_weight) == (0.01, False, 20_000, 0.001)
        assert (loss.convnext_weight, loss.lpips_weight) == (0.1, 0.0)  # official perceptual_loss convnext_s, 0.1
        assert_official_discriminator(loss)
        assert (stage2.training.warmup_steps, stage2.training.max_steps, stage2.training.adam_beta2) == (5_000, 500_000, 0.999)
        # Its stage-1 model, shrunk, builds: the generic test above runs it.
        assert stage1.model["model_type"] == "titok"
    single = load_config(REPO / "configs" / "imagenet256" / "titok-bl64-vq8k-single-stage.yaml")
    model = single.model
    assert (model["codebook_size"], model["codebook_dim"], model["l2_norm"], model["dead_code_restarts"]) == (8192, 64, False, True)
    assert (model["encoder_hidden_size"], model["decoder_hidden_size"], model["decoder_type"]) == (768, 1024, "pixel")
    assert (single.loss.disc_weight, single.loss.disc_start, single.loss.lecam_weight) == (0.1, 200_000, 0.001)
    assert (single.loss.lpips_weight, single.loss.convnext_weight) == (1.0, 0.1)  # lpips-convnext_s-1.0-0.1 x 1.1
    assert_official_discriminator(single.loss)
    # hf_vq's single-stage recipe: the official single stage's losses, optimiser and schedule; the released two-stage
    # models' codes and MaskGIT decoder sizes, with the convolutional decoder in place of the per-cell pixel head.
    conv = load_config(REPO / "configs" / "imagenet256" / "titok-bl64-conv-single-stage.yaml")
    assert conv.loss == single.loss and conv.training == single.training and conv.data == single.data
    changed = {key for key in conv.model.keys() | model.keys() if conv.model.get(key) != model.get(key)}
    assert changed == {"codebook_size", "codebook_dim", "l2_norm", "decoder_type", "maskgit_base_channels",
                       "maskgit_channel_multipliers", "maskgit_num_res_blocks", "maskgit_z_channels"}
    assert (conv.model["codebook_size"], conv.model["codebook_dim"], conv.model["l2_norm"]) == (4096, 12, True)
    released = TiTokConfig.titok_b64()
    assert conv.model["decoder_type"] == "conv" and all(
        conv.model[key] == (list(value) if isinstance(value, tuple) else value)
        for key, value in released.to_dict().items() if key.startswith("maskgit_") and key != "maskgit_codebook_size")
    for path in TITOK:  # official lr_scheduler: cosine with end_lr 1e-5
        args = load_config(path).training
        assert (args.lr_scheduler, args.min_learning_rate) == ("cosine", 1e-5), path.name
