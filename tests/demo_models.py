"""A tiny tokenizer and GPT for the playground tests, saved with save_pretrained (nothing downloaded).

A freshly initialised VQ-VAE maps every crop to one code and its decoder barely reacts to the
codes, so nothing would show. Two edits make a random model behave like a trained one where
the tests look: the codebook is set to encoder outputs of example tiles (many codes get used,
as after k-means init), and the first decoder layer is scaled up so one replaced token visibly
changes the picture.
"""

import torch

import hf_vq

IMAGE_SIZE = 32
CODEBOOK_SIZE = 32
NUM_CLASSES = 4


def tiny_tokenizer() -> "hf_vq.VQVAEModel":
    from hf_vq.demo.playground import example_image, tiles

    torch.manual_seed(0)
    model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=CODEBOOK_SIZE, codebook_dim=8,
                                               image_size=IMAGE_SIZE)).eval()
    processor = hf_vq.VQImageProcessor(size=IMAGE_SIZE)
    with torch.no_grad():
        latents = model.encode_latents(processor(tiles(example_image("chelsea"), IMAGE_SIZE, 4)).pixel_values)
        vectors = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        model.quantizer.codebook.copy_(vectors[torch.randperm(len(vectors))[:CODEBOOK_SIZE]])
        model.post_quant_conv.weight.mul_(300)
    return model


def save_tiny_models(folder):
    """(tokenizer folder, GPT folder) under ``folder``."""
    from hf_vq.models.llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel

    tokenizer_dir, gpt_dir = folder / "tokenizer", folder / "gpt"
    tiny_tokenizer().save_pretrained(tokenizer_dir)
    hf_vq.VQImageProcessor(size=IMAGE_SIZE).save_pretrained(tokenizer_dir)
    torch.manual_seed(1)
    gpt = LlamaGenGPTModel(LlamaGenGPTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                             vocab_size=CODEBOOK_SIZE, block_size=64, num_classes=NUM_CLASSES,
                                             multiple_of=32))
    torch.nn.init.normal_(gpt.lm_head.weight, std=0.5)  # a non-uniform distribution to sample from
    gpt.save_pretrained(gpt_dir)
    return tokenizer_dir, gpt_dir
