"""VQAutoregressivePipeline: output, seeds, save_pretrained / from_pretrained round trip."""

import json

import numpy as np
import pytest
import torch
from diffusers import ImagePipelineOutput

import hf_vq
from hf_vq.generation import generate, generate_samples, make_grid
from hf_vq.pipelines import VQAutoregressivePipeline


def tiny_components():
    torch.manual_seed(0)
    tokenizer = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=32, codebook_size=64, codebook_dim=8, image_size=16)).eval()
    gpt_config = hf_vq.LlamaGenGPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=64,
                                         block_size=16, num_classes=5, multiple_of=32)
    transformer = hf_vq.LlamaGenGPTModel(gpt_config).eval()
    torch.nn.init.normal_(transformer.lm_head.weight, std=0.5)
    return tokenizer, transformer


@pytest.fixture(scope="module")
def pipeline():
    tokenizer, transformer = tiny_components()
    return VQAutoregressivePipeline(tokenizer=tokenizer, transformer=transformer)


def test_pipeline_decodes_the_sampled_tokens(pipeline):
    out = pipeline([1, 3], num_images_per_label=2, guidance_scale=2.0, top_k=10,
                   generator=torch.Generator().manual_seed(0), output_type="pt")
    assert isinstance(out, ImagePipelineOutput)
    assert out.images.shape == (4, 3, 16, 16)
    assert out.images.min() >= 0 and out.images.max() <= 1
    # Independent path: the same seeded tokens decoded by hand.
    tokens = generate(pipeline.transformer, [1, 1, 3, 3], guidance_scale=2.0, top_k=10,
                      generator=torch.Generator().manual_seed(0))
    by_hand = (pipeline.tokenizer.decode_indices(tokens.view(4, 4, 4)).sample / 2 + 0.5).clamp(0, 1)
    assert torch.allclose(out.images, by_hand, atol=1e-6)


def test_pipeline_pil_output_and_bad_arguments(pipeline):
    images = pipeline(2, generator=torch.Generator().manual_seed(0)).images
    assert len(images) == 1 and images[0].size == (16, 16)
    with pytest.raises(ValueError, match="output_type"):
        pipeline(1, output_type="latent")
    with pytest.raises(ValueError, match="class_labels must be in"):
        pipeline([5])


def test_save_and_load_round_trip(pipeline, tmp_path):
    pipeline.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["tokenizer"] == ["hf_vq", "VQVAEModel"]
    assert index["transformer"] == ["hf_vq", "LlamaGenGPTModel"]
    loaded = VQAutoregressivePipeline.from_pretrained(tmp_path)
    assert isinstance(loaded.transformer, hf_vq.LlamaGenGPTModel)
    assert isinstance(loaded.tokenizer, hf_vq.VQVAEModel)
    kwargs = {"guidance_scale": 1.5, "top_p": 0.9, "output_type": "np"}
    before = pipeline([0, 4], generator=torch.Generator().manual_seed(1), **kwargs).images
    after = loaded([0, 4], generator=torch.Generator().manual_seed(1), **kwargs).images
    # Same tokens from the same seed; the decoded pixels agree to float rounding (reloaded weights
    # sit at other addresses, which may change the BLAS path).
    np.testing.assert_allclose(before, after, rtol=0, atol=1e-5)


def test_generate_samples_writes_one_png_per_sample(pipeline, tmp_path):
    samples = generate_samples(pipeline.transformer, pipeline.tokenizer, num_samples=7, output_dir=tmp_path,
                               batch_size=3, progress_bar=False, guidance_scale=2.0)
    assert samples.shape == (7, 16, 16, 3) and samples.dtype == np.uint8
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    assert files[0] == "000000_class0.png" and files[6] == "000006_class1.png"  # classes cycle over 5
    assert make_grid(samples, num_columns=4).size == (64, 32)


def test_mismatched_vocab_is_refused():
    tokenizer, _ = tiny_components()
    other = hf_vq.LlamaGenGPTModel(hf_vq.LlamaGenGPTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                             vocab_size=32, block_size=16, num_classes=5))
    with pytest.raises(ValueError, match="codes"):
        VQAutoregressivePipeline(tokenizer=tokenizer, transformer=other)
