"""VQ-KD (BEiT v2): parity with the official code after conversion, the normalised EMA codebook,
the teacher kept outside the weights, save/load, bad input.

Fixtures ``tests/fixtures/vqkd_tiny_*.safetensors`` were generated once by
``tests/fixtures/make_vqkd_fixtures.py`` running BEiT v2's ``modeling_vqkd.py`` (see that script
for the shrunk architecture and how the weights were drawn).
"""

import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_teachers import TINY_PROJECTION, save_tiny_teacher
from transformers import AutoModel

from hf_vq import VQKDConfig, VQKDModel
from hf_vq.cli.main import main as cli_main
from hf_vq.quantizers import NormalizedEMAUpdate, VectorQuantizer

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TOLERANCE = 1e-4
# The fixture's architecture: the head count is not in the weights.
TINY = dict(image_size=32, patch_size=8, encoder_hidden_size=32, encoder_num_layers=2, encoder_num_heads=4,
            decoder_hidden_size=32, decoder_num_layers=1, decoder_num_heads=4, codebook_size=64, codebook_dim=8,
            teacher_feature_dim=TINY_PROJECTION)


@pytest.fixture(scope="module")
def official():
    return load_file(os.path.join(FIXTURES, "vqkd_tiny_state_dict.safetensors")), load_file(
        os.path.join(FIXTURES, "vqkd_tiny_outputs.safetensors"))


@pytest.fixture(scope="module")
def clip_teacher(tmp_path_factory):
    return save_tiny_teacher("clip", tmp_path_factory.mktemp("teacher") / "clip")


def _write_checkpoint(path, state_dict):
    # The released files: {"model": state_dict} (plus the teacher's weights in training checkpoints).
    torch.save({"model": {**state_dict, "teacher_model.visual.proj": torch.zeros(2, 2)}}, path)
    return str(path)


def _converted(official, tmp_path, clip_teacher):
    state_dict, _ = official
    checkpoint = _write_checkpoint(tmp_path / "vqkd.pth", state_dict)
    out_dir = tmp_path / "converted"
    assert cli_main(["convert", "vqkd", checkpoint, str(out_dir), "--num-heads", "4", "--teacher", clip_teacher,
                     "--teacher-features", "projected"]) == 0
    return AutoModel.from_pretrained(out_dir)


def test_converted_checkpoint_matches_the_official_model(official, tmp_path, clip_teacher):
    _, outputs = official
    model = _converted(official, tmp_path, clip_teacher).eval()
    assert isinstance(model, VQKDModel)
    assert {key: getattr(model.config, key) for key in TINY} == TINY
    assert model.config.teacher_name_or_path == clip_teacher
    pixels, target = outputs["pixel_values"], outputs["teacher_features"]
    with torch.no_grad():
        encoded = model.encode(pixels)
        decoded = model.decode(encoded.quantized).sample
        from_indices = model.decode_indices(encoded.indices).sample
    assert torch.equal(encoded.indices, outputs["tokens"])
    assert (encoded.quantized - outputs["quantized"]).abs().max() < TOLERANCE
    assert (decoded - outputs["decoded"]).abs().max() < TOLERANCE
    assert (from_indices - outputs["decoded"]).abs().max() < TOLERANCE
    output = model(pixels, teacher_features=target)  # eval mode, autograd on: the loss terms are computed
    torch.testing.assert_close(output.reconstruction_loss, outputs["reconstruction_loss"][0], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(output.quantizer_loss, outputs["quantizer_loss"][0], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(output.loss, outputs["loss"][0], atol=TOLERANCE, rtol=0)


def test_one_training_step_moves_the_codebook_like_the_official_normalised_ema(official, tmp_path, clip_teacher):
    state_dict, outputs = official
    model = _converted(official, tmp_path, clip_teacher).train()
    before = model.quantizer.codebook.detach().clone()
    model(outputs["pixel_values"], teacher_features=outputs["teacher_features"])
    after = model.quantizer.codebook.detach()
    hit = outputs["tokens"].unique()
    assert (after[hit] - before[hit]).abs().max() > 1e-3  # the step did move the codes it used
    assert (after - outputs["codebook_after_train_step"]).abs().max() < 1e-6
    # Conversion marked the k-means init as done: the first training batch did not redraw the codebook.
    assert bool(model.quantizer.behaviours[0].initialised)


def test_conversion_keys_teacher_statistics_and_strictness(official, tmp_path):
    from hf_vq.convert.vqkd import VQKD_VARIANTS, convert_vqkd_checkpoint

    state_dict, _ = official
    checkpoint = _write_checkpoint(tmp_path / "vqkd.pth", state_dict)
    model = convert_vqkd_checkpoint(checkpoint, config=VQKDConfig(**TINY))
    keys = set(model.state_dict())
    assert not any(key.startswith(("teacher", "scaling")) or "cluster_size" in key or "embed_avg" in key for key in keys)
    # BEiT's q_bias / v_bias become the fused bias with a zero key part.
    qkv_bias = model.encoder.blocks[1].attn.qkv.bias.detach()
    assert torch.equal(qkv_bias[:32], state_dict["encoder.blocks.1.attn.q_bias"].float())
    assert torch.equal(qkv_bias[32:64], torch.zeros(32))
    assert torch.equal(qkv_bias[64:], state_dict["encoder.blocks.1.attn.v_bias"].float())
    # A 24-d target is neither the CLIP nor the DINO tokenizer: the teacher must be named.
    with pytest.raises(ValueError, match="--teacher"):
        convert_vqkd_checkpoint(checkpoint, num_heads=4)
    # Width 32 gives no head count by the ViT convention (width / 64).
    with pytest.raises(ValueError, match="--num-heads"):
        convert_vqkd_checkpoint(checkpoint, teacher="x")
    # A key no rule knows, or a missing one, is refused with its name.
    extra = _write_checkpoint(tmp_path / "extra.pth", {**state_dict, "encoder.head.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"encoder\.head\.weight"):
        convert_vqkd_checkpoint(extra, config=VQKDConfig(**TINY))
    partial = {key: value for key, value in state_dict.items() if key != "decoder.blocks.0.attn.v_bias"}
    with pytest.raises(ValueError, match="v_bias"):
        convert_vqkd_checkpoint(_write_checkpoint(tmp_path / "partial.pth", partial), config=VQKDConfig(**TINY))
    # The released variants: ViT-B/16 at 224, 8192 x 32 codes, the teacher each predicts.
    dino = VQKD_VARIANTS["vqkd_encoder_base_decoder_1x768x12_dino"]()
    assert (dino.teacher_name_or_path, dino.teacher_feature_dim, dino.decoder_num_layers) == ("facebook/dino-vitb16", 768, 1)
    clip3 = VQKD_VARIANTS["vqkd_encoder_base_decoder_3x768x12_clip"]()
    assert (clip3.teacher_feature_dim, clip3.decoder_num_layers, clip3.codebook_size, clip3.codebook_dim) == (512, 3, 8192, 32)
    from hf_vq.cli import convert as convert_cli

    assert set(convert_cli.VQKD_VARIANT_NAMES) == set(VQKD_VARIANTS)


def test_normalised_ema_update_against_a_numpy_reference():
    torch.manual_seed(3)
    vq = VectorQuantizer(dim=4, codebook_size=5, l2_norm=True, beta=1.0, codebook_init="normal",
                         behaviours=[NormalizedEMAUpdate(decay=0.9)]).train()
    codebook = vq.lookup_table().detach().numpy().astype(np.float64)
    vq.codebook.data.copy_(torch.from_numpy(codebook).float())
    z = torch.randn(12, 4)
    out = vq(z)
    # The reference: BEiT v2's update written out in numpy.
    x = z.numpy().astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    indices = np.argmin(((x[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(out.indices.numpy(), indices)
    expected = codebook.copy()
    for k in np.unique(indices):
        mean = x[indices == k].mean(0)
        moved = 0.9 * codebook[k] + 0.1 * mean / np.linalg.norm(mean)
        expected[k] = moved / np.linalg.norm(moved)
    np.testing.assert_allclose(vq.codebook.detach().numpy(), expected, atol=1e-6)
    assert not vq.codebook.requires_grad and set(out.loss_terms) == {"commitment"}
    with pytest.raises(ValueError, match="l2_norm"):
        VectorQuantizer(dim=4, codebook_size=5, behaviours=[NormalizedEMAUpdate()])


def test_shapes_save_load_and_the_teacher_outside_the_weights(tmp_path, clip_teacher):
    model = VQKDModel(VQKDConfig(**TINY, teacher_name_or_path=clip_teacher))
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    teacher = model.load_teacher()
    target = teacher(pixels)
    assert target.shape == (2, 16, TINY_PROJECTION)
    output = model(pixels, teacher_features=target)
    assert output.indices.shape == (2, 4, 4) and output.reconstruction.shape == (2, 16, TINY_PROJECTION)
    assert output.quantized.shape == (2, 8, 4, 4)
    torch.testing.assert_close(output.quantized.norm(dim=1), torch.ones(2, 4, 4))  # unit-norm codes
    output.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())  # frozen
    assert not any(name.startswith("teacher") for name in model.state_dict())
    model.save_pretrained(tmp_path / "saved")
    loaded = AutoModel.from_pretrained(tmp_path / "saved").eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(pixels).indices, model.encode(pixels).indices)
        torch.testing.assert_close(loaded.decode_indices(model.encode(pixels).indices).sample,
                                   model.decode_indices(model.encode(pixels).indices).sample)


def test_bad_input_is_refused_with_the_fix(clip_teacher):
    model = VQKDModel(VQKDConfig(**TINY)).eval()
    pixels = torch.rand(1, 3, 32, 32) * 2 - 1
    with pytest.raises(ValueError, match="teacher_features"):
        model(pixels)
    with pytest.raises(ValueError, match=r"\(1, 16, 24\)"):
        model(pixels, teacher_features=torch.zeros(1, 16, 7))
    with pytest.raises(ValueError, match="32x32 images only"):
        model(torch.zeros(1, 3, 64, 64), teacher_features=torch.zeros(1, 64, 24))
    with pytest.raises(ValueError, match="4x4 grids"):
        model.decode_indices(torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        model.decode_indices(torch.full((1, 4, 4), 64))
    with pytest.raises(ValueError, match="decode_indices"):
        model.decode(torch.zeros(1, 8, 2, 2))
    with pytest.raises(ValueError, match="teacher_features"):
        VQKDConfig(**TINY, teacher_features="pooled")
    # A teacher whose features do not fit the decoder.
    wrong = VQKDModel(VQKDConfig(**{**TINY, "teacher_feature_dim": 16}, teacher_name_or_path=clip_teacher))
    with pytest.raises(ValueError, match="teacher_feature_dim"):
        wrong.load_teacher()
    coarse = VQKDModel(VQKDConfig(**{**TINY, "patch_size": 16}, teacher_name_or_path=clip_teacher))
    with pytest.raises(ValueError, match="patch size"):
        coarse.load_teacher()


def test_image_metrics_refuse_a_feature_decoder_and_usage_still_works():
    from hf_vq.evaluation import evaluate_reconstruction

    model = VQKDModel(VQKDConfig(**TINY))
    batches = [torch.rand(3, 3, 32, 32) * 2 - 1]
    with pytest.raises(ValueError, match=r"teacher features, not images.*\['psnr'\]"):
        evaluate_reconstruction(model, batches, progress=False, metrics=["usage", "psnr"])
    metrics = evaluate_reconstruction(model, batches, progress=False, metrics=["usage"])
    assert metrics["num_tokens"] == 3 * 16 and 0 < metrics["codebook_usage"] <= 1


def test_model_card_says_what_the_decoder_gives():
    from hf_vq.utils.model_card import render_tokenizer_card

    config = VQKDConfig(**TINY, teacher_name_or_path="openai/clip-vit-base-patch16")
    card = render_tokenizer_card(config.to_dict(), "someone/vqkd-tiny", "VQKDModel", 123,
                                 downsample_factor=8, metrics={"codebook_usage": 0.5, "perplexity": 3.0}).content
    assert "VQ-KD" in card and "openai/clip-vit-base-patch16" in card and "not images" in card
    assert "4x4 tokens" in card and "decodes codes back to pixels" not in card


@pytest.mark.parametrize("name", ["vqkd_encoder_base_decoder_3x768x12_clip", "vqkd_encoder_base_decoder_1x768x12_dino"])
def test_released_architectures_are_inferred_from_the_weight_shapes(name):
    from hf_vq.convert.vqkd import VQKD_VARIANTS, infer_vqkd_config

    decoder_layers, feature_dim = (3, 512) if name.endswith("clip") else (1, 768)
    shapes = {"encoder.cls_token": (1, 1, 768), "encoder.pos_embed": (1, 197, 768),
              "encoder.patch_embed.proj.weight": (768, 3, 16, 16), "decoder.cls_token": (1, 1, 768),
              "quantize.embedding.weight": (8192, 32), "decode_task_layer.2.weight": (feature_dim, 768)}
    shapes.update({f"encoder.blocks.{i}.norm1.weight": (768,) for i in range(12)})
    shapes.update({f"decoder.blocks.{i}.norm1.weight": (768,) for i in range(decoder_layers)})
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    inferred = infer_vqkd_config(state_dict).to_dict()
    expected = VQKD_VARIANTS[name]().to_dict()
    assert {k: v for k, v in inferred.items() if k != "transformers_version"} == {
        k: v for k, v in expected.items() if k != "transformers_version"}
