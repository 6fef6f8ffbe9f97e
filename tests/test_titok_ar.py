"""AR generation on TiTok's 1D tokens, end to end on a tiny TiTok: tokenize -> train-ar -> generate, and the pipeline."""

import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk
from PIL import Image

import hf_vq
from hf_vq.cli.main import main
from hf_vq.data.token_datasets import augmented_views
from hf_vq.pipelines import VQAutoregressivePipeline

# 16 tokens: a square number, so a sequence-length rule alone would wrongly pick 2D RoPE.
TINY = {"image_size": 16, "num_latent_tokens": 16, "patch_size": 4, "decoder_patch_size": 4, "encoder_hidden_size": 32,
        "encoder_num_layers": 1, "encoder_num_heads": 2, "decoder_hidden_size": 32, "decoder_num_layers": 1,
        "decoder_num_heads": 2, "codebook_size": 32, "codebook_dim": 4, "decoder_type": "pixel", "l2_norm": False,
        "legacy_latent_layout": False, "zero_one_pixels": False}


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def test_tokenize_train_ar_generate_and_pipeline_on_1d_tokens(tmp_path):
    torch.manual_seed(0)
    tokenizer = hf_vq.TiTokModel(hf_vq.TiTokConfig(**TINY)).eval()
    with torch.no_grad():  # spread the codes so that the images use several of them
        tokenizer.quantizer.codebook.normal_()
    tokenizer_dir, images_dir = tmp_path / "titok", tmp_path / "images"
    tokenizer.save_pretrained(tokenizer_dir)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)) for _ in range(8)]
    Dataset.from_dict({"image": images, "label": [0, 1, 2, 3] * 2}).save_to_disk(images_dir)

    tokens_dir, gpt_dir, samples_dir = tmp_path / "tokens", tmp_path / "gpt", tmp_path / "samples"
    assert main(["tokenize", "--tokenizer", str(tokenizer_dir), "--dataset", str(images_dir),
                 "--output-dir", str(tokens_dir), "--augment", "flip"]) == 0
    rows = load_from_disk(tokens_dir)
    assert len(rows) == 16 and len(rows[0]["input_ids"]) == 16
    view = torch.from_numpy(augmented_views(images[0], 16, "none")[0]).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        assert rows[0]["input_ids"] == tokenizer.encode(view).indices[0].tolist()  # (B, N) indices, in order

    assert main(["train-ar", "--tokens", str(tokens_dir), "--tokenizer", str(tokenizer_dir), "--output-dir", str(gpt_dir),
                 "--hidden-size", "32", "--num-layers", "1", "--num-heads", "2", "--batch-size", "4",
                 "--learning-rate", "1e-3", "--max-steps", "3", "--training.report_to", "none"]) == 0
    gpt = hf_vq.LlamaGenGPTModel.from_pretrained(gpt_dir)
    assert gpt.config.rope_type == "1d" and gpt.config.block_size == 16 and gpt.config.vocab_size == 32

    assert main(["generate", "--transformer", str(gpt_dir), "--tokenizer", str(tokenizer_dir), "--output-dir",
                 str(samples_dir), "--class-labels", "0", "3", "--num-images-per-label", "2"]) == 0
    assert len(list(samples_dir.glob("*_class*.png"))) == 4
    assert Image.open(samples_dir / "grid.png").size == (32, 32)  # 2 x 2 images of 16 px

    pipe = VQAutoregressivePipeline(tokenizer=hf_vq.TiTokModel.from_pretrained(tokenizer_dir), transformer=gpt)
    out = pipe([1, 2], num_images_per_label=2, output_type="pt", generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (4, 3, 16, 16)
    pipe.save_pretrained(tmp_path / "pipe")
    reloaded = VQAutoregressivePipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(reloaded.tokenizer, hf_vq.TiTokModel) and reloaded.transformer.config.rope_type == "1d"
