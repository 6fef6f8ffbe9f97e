"""Cluster (vq_cluster): frozen teacher features + online clustering, offline k-means, and stage 2 (pixel decoder).

The teacher is a tiny random CLIP saved to a temporary folder and named in the config by path
(tests/tiny_teachers.py): 32x32 images, 8x8 patches -> a 4x4 grid of 32-d post-LayerNorm features.
"""

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from datasets import Dataset
from PIL import Image
from safetensors import safe_open
from tiny_teachers import TINY_HIDDEN, TINY_IMAGE_SIZE, TINY_PATCH_SIZE, save_tiny_teacher
from transformers import AutoModel

from hf_vq.models import VQClusterConfig, VQClusterModel
from hf_vq.modules.teachers import FrozenTeacher
from hf_vq.quantizers.clustering import KMeans
from hf_vq.training import ARTrainConfig, TrainConfig, build_stage2_model, run_training, train_ar

REPO = Path(__file__).resolve().parents[1]
GRID = TINY_IMAGE_SIZE // TINY_PATCH_SIZE
TINY_DECODER = {"base_channels": 32, "channel_multipliers": [1, 1, 1, 1], "num_res_blocks": 0, "z_channels": 32}


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    return save_tiny_teacher("clip", tmp_path_factory.mktemp("teacher") / "clip")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """12 small random photographs-to-be (an image folder loads far faster than the embedded set)."""
    folder = tmp_path_factory.mktemp("images")
    generator = torch.Generator().manual_seed(5)
    for index in range(12):
        array = torch.randint(0, 256, (40, 40, 3), generator=generator, dtype=torch.uint8).numpy()
        Image.fromarray(array).save(folder / f"image{index:02d}.png")
    return str(folder)


def folder_data(image_folder) -> dict:
    return {"dataset": "imagefolder", "train_data_dir": image_folder, "eval_holdout": 4, "image_size": TINY_IMAGE_SIZE}


def tiny_config(teacher_path, **kwargs) -> VQClusterConfig:
    return VQClusterConfig(**{"image_size": TINY_IMAGE_SIZE, "teacher": teacher_path, "teacher_patch_size": TINY_PATCH_SIZE,
                              "codebook_dim": TINY_HIDDEN, "codebook_size": 16, **kwargs})


def pixels(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def reference_features(teacher_path, images) -> torch.Tensor:
    """The teacher's post-LayerNorm patch features, loaded on their own: (B * grid * grid, D)."""
    teacher = FrozenTeacher.from_pretrained(teacher_path, features="post_layernorm", image_size=TINY_IMAGE_SIZE)
    return teacher(images).reshape(-1, TINY_HIDDEN)


def teacher_state(model) -> dict:
    return {name: value.clone() for name, value in model.teacher.backbone.state_dict().items()}


def test_encode_quantises_teacher_features_by_cosine_to_codebook_rows(teacher_path):
    model = VQClusterModel(tiny_config(teacher_path)).eval()
    images = pixels()
    with torch.no_grad():
        encoded = model.encode(images)
    assert encoded.indices.shape == (2, GRID, GRID)
    assert encoded.quantized.shape == (2, TINY_HIDDEN, GRID, GRID)
    features = reference_features(teacher_path, images)
    assert torch.allclose(encoded.latents.permute(0, 2, 3, 1).reshape(-1, TINY_HIDDEN), features, atol=1e-6)
    # Cosine search (argmax of normalised dot products, brute force), raw codes out.
    expected = (F.normalize(features, dim=-1) @ F.normalize(model.quantizer.codebook, dim=-1).t()).argmax(1)
    assert torch.equal(encoded.indices.flatten(), expected)
    assert torch.equal(encoded.quantized.permute(0, 2, 3, 1).reshape(-1, TINY_HIDDEN), model.quantizer.codebook[expected])
    # Stage 1 has no pixel decoder: decoding says what to do.
    with pytest.raises(ValueError, match="no pixel decoder"):
        model.decode_indices(encoded.indices)
    assert not model.decodes_pixels  # image metrics refuse it; usage works
    from hf_vq.evaluation import evaluate_reconstruction

    assert evaluate_reconstruction(model, [images], progress=False, metrics=["usage"])["num_images"] == 2
    with pytest.raises(ValueError, match="image metrics"):
        evaluate_reconstruction(model, [images], progress=False, metrics=["usage", "psnr"])
    with pytest.raises(ValueError, match="encodes 32x32"):
        model.encode(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="NaN"):  # the tokenizers' common input checks run before the teacher
        model.encode(torch.full((1, 3, 32, 32), float("nan")))
    with pytest.raises(ValueError, match="float16"):
        model.encode(images.half())


def test_save_load_keeps_the_teacher_out_of_the_weights(teacher_path, tmp_path):
    model = VQClusterModel(tiny_config(teacher_path))
    assert set(model.state_dict()) == {"quantizer.codebook", "quantizer.behaviours.0.usage"}
    assert [name for name, _ in model.named_parameters()] == ["quantizer.codebook"]
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.save_pretrained(tmp_path / "cluster")
    with safe_open(str(tmp_path / "cluster" / "model.safetensors"), framework="pt") as handle:
        assert set(handle.keys()) == {"quantizer.codebook", "quantizer.behaviours.0.usage"}

    loaded = AutoModel.from_pretrained(tmp_path / "cluster")  # the teacher comes from config.teacher (a path)
    assert isinstance(loaded, VQClusterModel) and loaded.teacher.name_or_path == str(teacher_path)
    images = pixels()
    assert torch.equal(loaded.eval().encode(images).indices, model.eval().encode(images).indices)
    for name, value in model.teacher.backbone.state_dict().items():
        assert torch.equal(loaded.teacher.backbone.state_dict()[name], value)
    # The teacher moves with the model although it is not a submodule.
    loaded.to(torch.float64)
    assert next(loaded.teacher.parameters()).dtype == torch.float64

    # A missing teacher is an error naming it, never a random stand-in.
    with pytest.raises(ValueError, match="teacher config from"):
        VQClusterModel(tiny_config(str(tmp_path / "no-such-teacher")))
    # A teacher that does not fit the codebook is refused.
    projected = FrozenTeacher.from_pretrained(teacher_path, features="projected", image_size=TINY_IMAGE_SIZE)
    with pytest.raises(ValueError, match="does not fit"):
        VQClusterModel(tiny_config(teacher_path), teacher=projected)


def test_offline_kmeans_codebook_is_clustering_py_on_the_teacher_features(teacher_path, tmp_path):
    model = VQClusterModel(tiny_config(teacher_path))
    images = pixels(batch=8, seed=1)
    result = model.init_codebook_from_kmeans(model.teacher_features(images), max_iters=10, seed=3)
    expected = KMeans(16, max_iters=10, seed=3).fit(reference_features(teacher_path, images))
    assert torch.equal(model.quantizer.codebook.detach(), expected.centroids)
    assert result.inertia == pytest.approx(expected.inertia)
    # A build-codebook style file gives the same model.
    from safetensors.torch import save_file

    save_file({"codebook": expected.centroids.contiguous()}, str(tmp_path / "codebook.safetensors"))
    from_file = VQClusterModel.from_codebook(tiny_config(teacher_path), tmp_path / "codebook.safetensors")
    assert torch.equal(from_file.quantizer.codebook.detach(), expected.centroids)
    with pytest.raises(ValueError, match="shape"):
        model.set_codebook(torch.zeros(8, TINY_HIDDEN))


def cluster_raw(teacher_path, output_dir, image_folder) -> dict:
    """configs/iu/cluster-clip.yaml shrunk onto the tiny teacher and a folder of 12 images."""
    raw = yaml.safe_load((REPO / "configs" / "iu" / "cluster-clip.yaml").read_text())
    raw["model"].update(image_size=TINY_IMAGE_SIZE, teacher=str(teacher_path), teacher_patch_size=TINY_PATCH_SIZE,
                        codebook_dim=TINY_HIDDEN, codebook_size=16)
    raw["data"] = folder_data(image_folder)
    raw["training"].update(batch_size=4, max_steps=3, log_every=1, checkpoint_every=0, resume_from=None, report_to="none",
                           learning_rate=1e-2)
    raw["output_dir"] = str(output_dir)
    return raw


@pytest.fixture(scope="module")
def stage1_dir(teacher_path, image_folder, tmp_path_factory):
    """A stage-1 Cluster model trained 3 steps by `hf-vq train configs/iu/cluster-clip.yaml` (shrunk)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    output = tmp_path_factory.mktemp("stage1") / "cluster"
    result = run_training(TrainConfig.from_dict(cluster_raw(teacher_path, output, image_folder)))
    AcceleratorState._reset_state(reset_partial_state=True)
    return output, result


def test_online_clustering_trains_the_codebook_only(stage1_dir, teacher_path):
    output, result = stage1_dir
    assert [h["step"] for h in result.history] == [0, 1, 2]
    assert all("quantizer_codebook" in h and h["total"] > 0 for h in result.history)
    codebook = result.model.quantizer.codebook.detach()
    # U(-1/16, 1/16) at init: CVQ anchors pulled rarely used codes onto teacher features (unit-scale).
    assert codebook.abs().max() > 1 / 16
    assert float(result.model.quantizer.behaviours[0].usage.sum()) > 0
    fresh = FrozenTeacher.from_pretrained(teacher_path, features="post_layernorm", image_size=TINY_IMAGE_SIZE)
    for name, value in fresh.backbone.state_dict().items():
        assert torch.equal(result.model.teacher.backbone.state_dict()[name], value), name
    assert 0 < result.metrics["codebook_usage"] <= 1
    with safe_open(str(output / "model.safetensors"), framework="pt") as handle:
        assert set(handle.keys()) == {"quantizer.codebook", "quantizer.behaviours.0.usage"}
    saved = AutoModel.from_pretrained(output)
    assert torch.equal(saved.quantizer.codebook, codebook)


def test_stage1_config_refuses_the_gan_recipe(teacher_path, image_folder, tmp_path):
    raw = cluster_raw(teacher_path, tmp_path / "x", image_folder)
    raw["loss"] = {"disc_weight": 0.5}
    with pytest.raises(ValueError, match="disc_weight"):
        run_training(TrainConfig.from_dict(raw))


class TinyPerceptualLoss(nn.Module):
    """Stands in for LPIPS (a VGG16 would dominate this test's time): a distance between random conv features."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3).requires_grad_(False)

    def forward(self, reconstruction, target):
        return F.mse_loss(self.features(reconstruction), self.features(target))


def pixel_decoder_raw(stage1: Path, output_dir, image_folder) -> dict:
    """configs/iu/cluster-clip-pixel-decoder.yaml shrunk: the recipe's losses, GAN on from step 1."""
    raw = yaml.safe_load((REPO / "configs" / "iu" / "cluster-clip-pixel-decoder.yaml").read_text())
    raw["model"].update(stage1_from=str(stage1), pixel_decoder=TINY_DECODER)
    raw["data"] = folder_data(image_folder)
    raw["training"].update(batch_size=4, max_steps=2, log_every=1, checkpoint_every=0, resume_from=None, report_to="none",
                           mixed_precision="no", log_images_every=0)
    # perceptual_dropout off: the stand-in for LPIPS (TinyPerceptualLoss) has no dropout layers to switch on
    raw["loss"].update(disc_start=1, disc_layers=2, disc_channels=8, perceptual_dropout=False)
    raw["output_dir"] = str(output_dir)
    return raw


@pytest.fixture(scope="module")
def stage2_dir(stage1_dir, image_folder, tmp_path_factory):
    """The stage-1 model plus a pixel decoder trained 2 steps by the pixel-decoder recipe (shrunk)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    stage1, _ = stage1_dir
    output = tmp_path_factory.mktemp("stage2") / "decoder"
    raw = pixel_decoder_raw(stage1, output, image_folder)
    config = TrainConfig.from_dict(raw)
    model = build_stage2_model(config.model)
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    teacher_before = teacher_state(model)
    result = run_training(config, model=model, perceptual_loss=TinyPerceptualLoss())
    AcceleratorState._reset_state(reset_partial_state=True)
    return output, result, initial, teacher_before


def test_stage2_trains_the_pixel_decoder_behind_a_bit_identical_stage1(stage1_dir, stage2_dir):
    stage1, _ = stage1_dir
    output, result, initial, teacher_before = stage2_dir
    assert [h["step"] for h in result.history] == [0, 1]
    assert all({"generator_adversarial", "discriminator", "lpips"} <= set(h) for h in result.history[1:])
    trained = result.model.state_dict()
    stage1_model = AutoModel.from_pretrained(stage1)
    for name, value in stage1_model.state_dict().items():  # codebook and CVQ usage: bit-identical
        assert torch.equal(trained[name], value), name
        assert torch.equal(initial[name], value), name
    decoder_names = [name for name in trained if name.startswith("pixel_decoder.")]
    assert decoder_names and set(trained) == set(stage1_model.state_dict()) | set(decoder_names)
    assert any(not torch.equal(trained[name], initial[name]) for name in decoder_names)
    for name, value in teacher_state(result.model).items():
        assert torch.equal(value, teacher_before[name]), name
    assert not result.model.quantizer.training and not any(p.requires_grad for p in result.model.quantizer.parameters())

    model = AutoModel.from_pretrained(output).eval()
    assert model.decodes_pixels
    images = pixels()
    encoded = model.encode(images)
    decoded = model.decode_indices(encoded.indices).sample
    assert decoded.shape == images.shape and torch.isfinite(decoded).all()
    assert torch.equal(decoded, model.decode(encoded.quantized).sample)
    assert torch.equal(model(images).reconstruction, decoded)
    assert torch.equal(encoded.indices, stage1_model.eval().encode(images).indices)
    assert {"psnr", "ssim", "codebook_usage"} <= set(result.metrics)
    # The stage-2 model is frozen for good: train() keeps its quantizer in eval mode.
    model.train()
    assert model.pixel_decoder.training and not model.quantizer.training


def test_stage2_model_tokenizes_and_a_gpt_trains_on_its_tokens(stage2_dir, tmp_path):
    output, *_ = stage2_dir
    tokens, gpt, samples = tokenize_train_a_tiny_gpt_and_sample(output, pixels(batch=6, seed=2), tmp_path)
    assert len(tokens) == 12 and len(tokens[0]["input_ids"]) == GRID * GRID
    assert gpt.config.vocab_size == 16
    assert samples.shape == (2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE) and samples.abs().max() <= 1


def tokenize_train_a_tiny_gpt_and_sample(tokenizer_dir, images: torch.Tensor, tmp_path):
    """The downstream path of a stage-2 tokenizer: tokenize ``images`` ([-1, 1], labels 0, 1, 2, ...; flips
    doubled), train a 1-layer GPT for 2 steps on the tokens, sample classes 0 and 1. Returns (tokens, gpt, samples)."""
    from hf_vq.data.token_datasets import tokenize_dataset
    from hf_vq.generation.images import generate_images

    tokenizer = AutoModel.from_pretrained(tokenizer_dir)
    arrays = (images * 127.5 + 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    dataset = Dataset.from_dict({"image": [Image.fromarray(a) for a in arrays], "label": [i % 3 for i in range(len(arrays))]})
    tokens = tokenize_dataset(tokenizer, dataset, augment="flip")
    tokens.save_to_disk(tmp_path / "tokens")
    config = ARTrainConfig.from_dict({
        "output_dir": str(tmp_path / "gpt"),
        "model": {"preset": "GPT-B", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "multiple_of": 16},
        "data": {"tokens": str(tmp_path / "tokens"), "tokenizer": str(tokenizer_dir)},
        "training": {"batch_size": 4, "max_steps": 2, "log_every": 1, "checkpoint_every": 0, "report_to": "none"},
    })
    gpt = train_ar(config).model.eval()
    samples = generate_images(gpt, tokenizer.eval(), [0, 1], guidance_scale=1.0, generator=torch.Generator().manual_seed(0))
    return tokens, gpt, samples


def test_stage2_config_errors_name_the_key(teacher_path, image_folder, tmp_path):
    from hf_vq.training import ConfigError

    raw = pixel_decoder_raw(tmp_path / "stage1", tmp_path / "out", image_folder)
    raw["model"]["codebook_size"] = 32
    with pytest.raises(ConfigError, match="codebook_size"):
        TrainConfig.from_dict(raw)
    raw = pixel_decoder_raw(tmp_path / "stage1", tmp_path / "out", image_folder)
    raw["model"]["pixel_decoder"] = {"codebook_dim": 8}
    with pytest.raises(ConfigError, match="codebook_dim"):
        TrainConfig.from_dict(raw)
    # A decoder whose upsampling is not the teacher's patch grid.
    model = VQClusterModel(tiny_config(teacher_path))
    with pytest.raises(ValueError, match="upsample x2"):
        model.add_pixel_decoder({"channel_multipliers": [1, 2]})
    # A new model with a pixel decoder would skip stage 1.
    raw = cluster_raw(teacher_path, tmp_path / "y", image_folder)
    raw["model"]["pixel_decoder"] = TINY_DECODER
    with pytest.raises(ValueError, match="stage 1"):
        run_training(TrainConfig.from_dict(raw))


def test_iu_cluster_configs_load_as_written_and_pick_their_objectives():
    from hf_vq.training import OnlineClusteringObjective, PixelDecoderObjective, load_config, tokenizer_objective_class

    stage1 = load_config(REPO / "configs" / "iu" / "cluster-clip.yaml")
    assert stage1.model["codebook_size"] == 8192 and stage1.model["codebook_dim"] == 768
    assert tokenizer_objective_class(stage1) is OnlineClusteringObjective
    stage2 = load_config(REPO / "configs" / "iu" / "cluster-clip-pixel-decoder.yaml")
    assert tokenizer_objective_class(stage2) is PixelDecoderObjective
    assert VQClusterConfig(pixel_decoder=stage2.model["pixel_decoder"]).pixel_decoder["channel_multipliers"] == [1, 1, 2, 2, 4]


def test_pixel_decoder_mixin_is_generic_for_any_semantic_tokenizer():
    """What VQ-KD needs: a config field, build_pixel_decoder() in __init__, stage1_forward. Here a toy model
    whose codebook would move in training mode (EMA): behind a pixel decoder nothing of stage 1 moves."""
    from huggingface_hub.dataclasses import strict

    from hf_vq.models import PixelDecoderMixin, VQTokenizerConfig, VQTokenizerPreTrainedModel
    from hf_vq.quantizers import EMAUpdate, VectorQuantizer

    @strict
    class ToyConfig(VQTokenizerConfig):
        model_type = "toy_semantic"
        image_size: int = 32
        codebook_size: int = 8
        codebook_dim: int = 4
        pixel_decoder: dict | None = None

    class ToySemanticModel(PixelDecoderMixin, VQTokenizerPreTrainedModel):
        config_class = ToyConfig
        downsample_factor = 8

        def __init__(self, config):
            super().__init__(config)
            self.encoder = nn.Conv2d(3, config.codebook_dim, 8, stride=8)
            self.quantizer = VectorQuantizer(config.codebook_dim, config.codebook_size, behaviours=[EMAUpdate()])
            self.build_pixel_decoder()
            self.post_init()

        def encode_latents(self, pixel_values):
            return self.encoder(pixel_values)

        def stage1_forward(self, pixel_values, return_dict=True):
            return self.encode(pixel_values)

    model = ToySemanticModel(ToyConfig())
    assert model(pixels()).loss_terms  # stage 1: the model's own forward
    model.add_pixel_decoder(TINY_DECODER)
    stage1 = {name: value.clone() for name, value in model.state_dict().items() if not name.startswith("pixel_decoder")}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(2):
        output = model(pixels())
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert output.reconstruction.shape == (2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    for name, value in model.state_dict().items():
        if name in stage1:
            assert torch.equal(value, stage1[name]), name
    assert all(p.requires_grad == name.startswith("pixel_decoder.") for name, p in model.named_parameters())
