"""Parity with the ImageNet 64x64 benchmark code (xyfJASON/visual-tokenizer-pytorch) and its converter.

``tests/fixtures/visual_tokenizer_tiny.safetensors`` was made by
``tests/fixtures/make_visual_tokenizer_fixtures.py`` with the benchmark code itself (its
docstring says how): a tiny SimpleCNN with each of the benchmark's quantizers, the
outputs, the gradients of its training loss and the weights after 3 Adam steps of its
``train_step``; and its train crop. Our models load its weights through
``hf-vq convert visual-tokenizer`` and must give the same numbers.
"""

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModel

import hf_vq
from hf_vq.cli.main import main as cli_main
from hf_vq.convert.common import rename_state_dict
from hf_vq.convert.visual_tokenizer import (
    SUPPORTED_MODEL_TYPES,
    convert_visual_tokenizer_state_dict,
    load_row_config,
    visual_tokenizer_rename_rules,
)
from hf_vq.models import TOKENIZERS

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "visual_tokenizer_tiny.safetensors"
TOLERANCE = 1e-5
TENSORS = load_file(FIXTURE)
with safe_open(FIXTURE, "pt") as _handle:
    _METADATA = _handle.metadata()
CASES = json.loads(_METADATA["cases"])
RECIPE = json.loads(_METADATA["recipe"])
BACKBONE = {"hidden_dim": RECIPE["hidden_dim"], "num_res_blocks": RECIPE["num_res_blocks"], "image_size": RECIPE["image_size"]}

# Our tokenizer config for each fixture case (the benchmark's quantizer arguments, our names).
OURS = {
    "vq": ("vqvae", {"codebook_size": 16, "codebook_dim": 8}),
    "vq_l2": ("vqvae", {"codebook_size": 16, "codebook_dim": 8, "l2_norm": "search"}),
    "vq_ema": ("vqvae", {"codebook_size": 16, "codebook_dim": 8, "use_ema": True, "ema_decay": 0.99,
                         "ema_count_init": 0.0}),
    "vq_entropy": ("vqvae", {"codebook_size": 16, "codebook_dim": 8, "entropy_weight": 0.1, "entropy_temperature": 0.01}),
    "fsq": ("fsq_vae", {"levels": [5, 4, 3]}),
    "simvq": ("simvq_vae", {"codebook_size": 16, "codebook_dim": 8}),
    "lfq": ("lfq_vae", {"codebook_dim": 5, "entropy_weight": 0.1, "entropy_temperature": 0.01}),
    "ibq": ("ibq_vae", {"codebook_size": 16, "codebook_dim": 8, "entropy_weight": 0.1, "entropy_temperature": 0.01}),
}
# Each configs/imagenet64 row and the fixture case whose quantizer (and flags) it has.
ROW_CASES = {
    "vq_d64_k512": "vq", "vq_d64_k2048": "vq", "vq_d64_k16384": "vq", "vq_d8_k2048": "vq", "vq_d8_k16384": "vq",
    "vq_l2_d64_k2048": "vq_l2", "vq_l2_d64_k16384": "vq_l2", "vq_ema_d64_k512": "vq_ema",
    "vq_entropy_d64_k2048": "vq_entropy", "vq_entropy_d64_k16384": "vq_entropy",
    "fsq_8-8-8": "fsq", "fsq_8-5-5-5": "fsq", "fsq_8-8-8-6-5": "fsq",
    "simvq_k512": "simvq", "simvq_k2048": "simvq", "simvq_k16384": "simvq",
    "lfq_d9": "lfq", "lfq_d11": "lfq", "lfq_d14": "lfq",
    "ibq_d64_k512": "ibq", "ibq_d64_k2048": "ibq", "ibq_d64_k16384": "ibq",
}


def reference(case: str, part: str) -> dict:
    prefix = f"{case}.{part}."
    return {key[len(prefix):]: value for key, value in TENSORS.items() if key.startswith(prefix)}


def our_config(case: str, **overrides):
    model_type, fields = OURS[case]
    return TOKENIZERS[model_type][0](**{**BACKBONE, **fields, **overrides})


def converted(case: str):
    return convert_visual_tokenizer_state_dict(reference(case, "initial"), our_config(case))


def renamed_reference(case: str, part: str, model) -> dict:
    renamed, unmatched = rename_state_dict(reference(case, part), visual_tokenizer_rename_rules(model), dropped=())
    assert not unmatched
    return renamed


def assert_close(ours, theirs, what):
    difference = (ours.detach().float() - theirs.float()).abs().max().item()
    assert difference < TOLERANCE, f"{what}: max abs difference {difference:.3g}"


def test_fixture_covers_every_quantizer_of_the_benchmark():
    assert set(CASES) == set(OURS) == {"vq", "vq_l2", "vq_ema", "vq_entropy", "fsq", "simvq", "lfq", "ibq"}
    # The assignments are not degenerate (several codes used), so equal indices mean something.
    for case in ("vq", "vq_l2", "vq_entropy", "fsq", "lfq"):
        assert TENSORS[f"{case}.indices"].unique().numel() >= 3, case


@pytest.mark.parametrize("case", sorted(OURS))
def test_forward_losses_and_gradients_match_the_benchmark(case):
    model = converted(case).train()
    x = TENSORS["pixel_values"][0]
    latents = model.encode_latents(x)
    assert_close(latents, TENSORS[f"{case}.z"], "latents")
    out = model(x)
    batch, _, height, width = latents.shape
    assert torch.equal(out.indices, TENSORS[f"{case}.indices"].reshape(batch, height, width))
    assert_close(out.quantized, TENSORS[f"{case}.quantized_z"], "quantized")
    assert_close(out.reconstruction, TENSORS[f"{case}.decx"], "reconstruction")
    assert_close(out.reconstruction_loss, TENSORS[f"{case}.loss_rec"], "reconstruction loss")

    terms, quantizer_case = out.loss_terms, CASES[case]
    if quantizer_case["coef_commit"]:
        assert_close(terms["commitment"] / model.config.commitment_beta, TENSORS[f"{case}.loss_commit"], "commitment")
    if "codebook" in terms:
        codebook_term = terms["codebook"] + terms.get("double_quantization", 0.0)
        assert_close(codebook_term, TENSORS[f"{case}.loss_vq"], "codebook loss")
    if f"{case}.loss_entropy" in TENSORS:
        assert_close(terms["entropy"] / model.config.entropy_weight, TENSORS[f"{case}.loss_entropy"], "entropy")
    assert_close(out.loss, TENSORS[f"{case}.loss"], "training loss")

    out.loss.backward()
    gradients = reference(case, "grad")
    assert gradients, case
    names = dict(rename_state_dict({key: key for key in gradients}, visual_tokenizer_rename_rules(model), ())[0])
    parameters = dict(model.named_parameters())
    for ours_name, theirs_name in names.items():
        assert_close(parameters[ours_name].grad, gradients[theirs_name], f"gradient of {ours_name}")
    if case == "vq_ema":  # EMA: the codebook learns from the assignments only, never from a gradient
        assert model.quantizer.codebook.grad is None


@pytest.mark.parametrize("case", sorted(OURS))
def test_three_adam_steps_stay_with_the_benchmark(case):
    model = converted(case).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    for x in TENSORS["pixel_values"]:
        optimizer.zero_grad()
        model(x).loss.backward()
        optimizer.step()
    expected = renamed_reference(case, "final", model)
    state = model.state_dict()
    assert set(expected) == set(state)
    for key, value in expected.items():
        assert_close(state[key], value, f"{key} after {RECIPE['steps']} steps")


@pytest.mark.parametrize("case", sorted(OURS))
def test_cli_converts_the_benchmark_model_pt(case, tmp_path):
    checkpoint = tmp_path / "model.pt"
    torch.save({"model": reference(case, "initial")}, checkpoint)
    model_type, fields = OURS[case]
    config_path = tmp_path / "row.yaml"
    config_path.write_text(yaml.safe_dump({"model": {"model_type": model_type, **BACKBONE, **fields}}))
    out_dir = tmp_path / "converted"
    assert cli_main(["convert", "visual-tokenizer", str(checkpoint), str(out_dir), "--config", str(config_path)]) == 0
    model = AutoModel.from_pretrained(out_dir).eval()
    assert model.config.model_type == model_type
    x = TENSORS["pixel_values"][0]
    with torch.no_grad():
        encoded = model.encode(x)
        reconstruction = model.decode(encoded.quantized).sample
        from_indices = model.decode_indices(encoded.indices).sample
    assert torch.equal(encoded.indices.flatten(), TENSORS[f"{case}.indices"])
    assert_close(reconstruction, TENSORS[f"{case}.decx"], "reconstruction")
    assert torch.equal(from_indices, reconstruction)


@pytest.mark.parametrize("row", sorted(ROW_CASES))
def test_every_imagenet64_row_loads_the_benchmark_weights_of_its_quantizer(row):
    """The row's own flags (shrunk to the fixture's sizes) accept the benchmark's keys and give its outputs."""
    path = REPO / "configs" / "imagenet64" / f"{row}.yaml"
    case = ROW_CASES[row]
    assert load_row_config(path).model_type == OURS[case][0]
    section = yaml.safe_load(path.read_text())["model"]
    model_type = section.pop("model_type")
    sizes = {key: value for key, value in OURS[case][1].items() if key in ("codebook_size", "codebook_dim", "levels")}
    shrunk = TOKENIZERS[model_type][0](**{**section, **BACKBONE, **sizes})
    model = convert_visual_tokenizer_state_dict(reference(case, "initial"), shrunk)
    with torch.no_grad():
        out = model(TENSORS["pixel_values"][0])
    assert torch.equal(out.indices.flatten(), TENSORS[f"{case}.indices"])
    assert_close(out.reconstruction, TENSORS[f"{case}.decx"], "reconstruction")


def test_every_simplecnn_row_has_a_parity_case():
    rows = {path.stem for path in (REPO / "configs" / "imagenet64").glob("*.yaml")}
    assert rows - set(ROW_CASES) == {"cvq_d64_k512"}  # CVQ-VAE is not in the benchmark code
    assert set(ROW_CASES) <= rows
    assert set(SUPPORTED_MODEL_TYPES) == {OURS[case][0] for case in OURS}


def test_conversion_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no 'cvq_vae' tokenizer"):
        convert_visual_tokenizer_state_dict(reference("vq", "initial"), hf_vq.CVQVAEConfig(**BACKBONE))
    # SimVQ weights into a VQ config: the projection has nowhere to go.
    with pytest.raises(ValueError, match="codebook_proj"):
        convert_visual_tokenizer_state_dict(reference("simvq", "initial"), our_config("vq"))
    with pytest.raises(ValueError, match="shape mismatches"):
        convert_visual_tokenizer_state_dict(reference("vq", "initial"), our_config("vq", codebook_size=32))
    with pytest.raises(ValueError, match="model_type"):
        (tmp_path / "bad.yaml").write_text("model: {hidden_dim: 8}\n")
        load_row_config(tmp_path / "bad.yaml")
