"""LlamaGen GPT: parity with the official implementation, shapes, loss, presets, conversion."""

from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel

import hf_vq  # noqa: F401  (registers the Auto classes)
from hf_vq.convert import (
    convert_llamagen_gpt_checkpoint,
    convert_llamagen_gpt_state_dict,
)
from hf_vq.models.llamagen_gpt import (
    LLAMAGEN_GPT_PRESETS,
    LlamaGenGPTConfig,
    LlamaGenGPTModel,
)
from hf_vq.models.llamagen_gpt.modeling_llamagen_gpt import rotary_cos_sin_table

FIXTURE = Path(__file__).parent / "fixtures" / "llamagen_gpt_tiny.pt"
# Logits of the official gpt.py (tiny random-weight models, fp32), generated once outside the repository.
TINY = {"num_attention_heads": 4, "multiple_of": 32, "block_size": 16, "token_dropout": 0.0, "residual_dropout": 0.0, "ffn_dropout": 0.0}
# Official parameter counts: LlamaGen's Transformer built with vocab 16384, block_size 256, 1000 classes.
OFFICIAL_PARAMETER_COUNTS = {
    "GPT-B": 110_888_448,
    "GPT-L": 342_910_976,
    "GPT-XL": 774_699_520,
    "GPT-XXL": 1_410_972_672,
    "GPT-3B": 3_096_659_200,
}


@pytest.fixture(scope="module")
def official():
    return torch.load(FIXTURE, weights_only=True)


def tiny_config(**overrides):
    base = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 32, "block_size": 16, "num_classes": 10,
                "multiple_of": 32, "token_dropout": 0.0, "residual_dropout": 0.0, "ffn_dropout": 0.0}
    return LlamaGenGPTConfig(**{**base, **overrides})


@pytest.mark.parametrize("variant", ["mha", "gqa"])
def test_converted_checkpoint_matches_official_training_logits(official, variant, tmp_path):
    case = official[variant]
    convert_llamagen_gpt_checkpoint(case["checkpoint"], tmp_path, None, num_key_value_heads=case["n_kv_head"], **TINY)
    model = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(model, LlamaGenGPTModel)
    logits = model(case["input_ids"], case["class_labels"]).logits
    assert logits.shape == (2, 17, 32)
    assert (logits - case["train_logits"]).abs().max() < 1e-4


def test_kv_cache_steps_match_official_cached_logits(official):
    case = official["mha"]
    model = convert_llamagen_gpt_checkpoint(case["checkpoint"], None, None, **TINY)
    cache = model.allocate_cache(2)
    with torch.no_grad():
        steps = [model(class_labels=case["class_labels"], cache=cache).logits]
        for t in range(5):
            steps.append(model(case["input_ids"][:, t : t + 1], cache=cache).logits)
    assert (torch.cat(steps, dim=1) - case["cached_logits"]).abs().max() < 1e-4


def test_rope_1d_table_matches_official(official):
    # The official 1D table for 12 positions, head_dim 16, base 10000, one class token (zero row first).
    config = tiny_config(rope_type="1d", block_size=12, num_attention_heads=4, hidden_size=64)
    assert torch.allclose(rotary_cos_sin_table(config), official["freqs_1d"], atol=1e-6)


def test_kv_cache_equals_full_recompute_in_chunks():
    torch.manual_seed(0)
    for rope_type, block_size in (("2d", 16), ("1d", 12)):
        model = LlamaGenGPTModel(tiny_config(rope_type=rope_type, block_size=block_size)).eval()
        torch.nn.init.normal_(model.lm_head.weight, std=0.1)  # the zero-initialised head would make every logit 0
        tokens = torch.randint(0, 32, (3, block_size))
        labels = torch.tensor([0, 5, 10])
        with torch.no_grad():
            full = model(tokens, labels).logits
            cache = model.allocate_cache(3)
            chunks = [model(tokens[:, :4], labels, cache=cache).logits]  # class token + 4 tokens at once
            for t in range(4, block_size):
                chunks.append(model(tokens[:, t : t + 1], cache=cache).logits)
        assert (torch.cat(chunks, dim=1) - full).abs().max() < 1e-5, rope_type


def test_logits_are_causal_and_position_i_predicts_token_i():
    torch.manual_seed(0)
    model = LlamaGenGPTModel(tiny_config()).eval()
    torch.nn.init.normal_(model.lm_head.weight, std=0.1)
    tokens = torch.randint(0, 32, (1, 16))
    changed = tokens.clone()
    changed[0, 7] = (changed[0, 7] + 1) % 32
    with torch.no_grad():
        a, b = model(tokens, torch.tensor([2])).logits, model(changed, torch.tensor([2])).logits
    # Token 7 enters at position 8 (the class token is position 0), so positions 0..7 are unchanged.
    # A tolerance, not equality: the two batches run the same kernels, but bit-identity of
    # attention kernels across inputs is not something torch guarantees.
    torch.testing.assert_close(a[:, :8], b[:, :8], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_loss_is_cross_entropy_of_position_i_against_token_i():
    torch.manual_seed(0)
    model = LlamaGenGPTModel(tiny_config()).eval()
    torch.nn.init.normal_(model.lm_head.weight, std=0.1)
    tokens = torch.randint(0, 32, (2, 16))
    out = model(tokens, torch.tensor([1, 2]), labels=tokens)
    log_probs = torch.log_softmax(out.logits[:, :16], dim=-1)
    expected = -log_probs.gather(-1, tokens[..., None]).mean()
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_initialisation_zero_head_and_normal_embeddings():
    model = LlamaGenGPTModel(tiny_config(hidden_size=128, vocab_size=512))
    assert torch.count_nonzero(model.lm_head.weight) == 0
    assert abs(model.token_embedding.weight.std().item() - 0.02) < 2e-3
    assert torch.equal(model.norm.weight, torch.ones(128))


def test_class_dropout_uses_the_null_class_only_in_training():
    model = LlamaGenGPTModel(tiny_config(class_dropout_prob=1.0))
    labels = torch.tensor([1, 2, 3])
    model.train()
    assert torch.equal(model.embed_class_labels(labels)[:, 0], model.class_embedding.weight[[10, 10, 10]])
    model.eval()
    assert torch.equal(model.embed_class_labels(labels)[:, 0], model.class_embedding.weight[[1, 2, 3]])


@pytest.mark.parametrize("preset", sorted(OFFICIAL_PARAMETER_COUNTS))
def test_preset_parameter_counts_equal_official(preset):
    config = LlamaGenGPTConfig.from_preset(preset, vocab_size=16384, block_size=256, num_classes=1000)
    with torch.device("meta"):
        model = LlamaGenGPTModel(config)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMETER_COUNTS[preset]


def test_bad_input_raises_clear_errors(official):
    with pytest.raises(ValueError, match="preset"):
        LlamaGenGPTConfig.from_preset("GPT-Z")
    with pytest.raises(ValueError, match="square"):
        LlamaGenGPTConfig(block_size=32)
    model = LlamaGenGPTModel(tiny_config())
    with pytest.raises(ValueError, match="class_labels must be in"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.tensor([11]))
    with pytest.raises(ValueError, match="beyond"):
        model(torch.zeros(1, 17, dtype=torch.long), torch.tensor([1]))
    state_dict = official["mha"]["checkpoint"]["model"]
    with pytest.raises(ValueError, match="Unexpected key"):
        convert_llamagen_gpt_state_dict({**state_dict, "extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="preset GPT-B"):
        convert_llamagen_gpt_checkpoint(official["mha"]["checkpoint"], None, "GPT-B", block_size=16)
    with pytest.raises(ValueError, match="num_attention_heads"):
        convert_llamagen_gpt_checkpoint(official["mha"]["checkpoint"], None, None, block_size=16)


def test_auto_classes_and_presets_round_trip(tmp_path):
    config = tiny_config()
    config.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), LlamaGenGPTConfig)
    assert set(LLAMAGEN_GPT_PRESETS) == set(OFFICIAL_PARAMETER_COUNTS)
