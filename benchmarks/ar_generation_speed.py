"""KV-cached generation vs recomputing the whole prefix at every step (target: >= 5x faster).

Generates 256 tokens (a 16x16 grid) with the same seed both ways, checks the tokens agree,
and prints both times and their ratio. Default: a GPT-B-shaped model; use --small on a
laptop CPU.

With ``--official-checkout PATH`` (a checkout of FoundationVision/LlamaGen) it also times
LlamaGen's own ``generate`` on the same weights (the official model's state dict converted
with hf_vq's converter) with the same sampling settings (target: hf_vq no slower).

    python benchmarks/ar_generation_speed.py [--small] [--batch-size 4] [--device cuda] [--official-checkout PATH]
"""

import argparse
import sys
import time

import torch

from hf_vq.convert.llamagen_gpt import convert_llamagen_gpt_state_dict
from hf_vq.generation import generate
from hf_vq.models.llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel


def timed_generate(model, labels, use_cache: bool, seed: int = 0):
    generator = torch.Generator(device=model.device).manual_seed(seed)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    tokens = generate(model, labels, guidance_scale=2.0, top_k=1000, generator=generator, use_cache=use_cache)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - start


def time_official(checkout: str, config: LlamaGenGPTConfig, labels: torch.Tensor, device: str):
    """LlamaGen's generate vs ours on the same weights: (official seconds, hf_vq seconds)."""
    sys.path.insert(0, checkout)
    from autoregressive.models.generate import generate as official_generate
    from autoregressive.models.gpt import ModelArgs, Transformer

    torch.manual_seed(0)
    official = Transformer(ModelArgs(
        dim=config.hidden_size, n_layer=config.num_hidden_layers, n_head=config.num_attention_heads,
        vocab_size=config.vocab_size, block_size=config.block_size, num_classes=config.num_classes,
        cls_token_num=1, model_type="c2i",
    )).to(device).eval()
    torch.nn.init.normal_(official.output.weight, std=0.02)  # a trained-like, non-uniform head
    ours = LlamaGenGPTModel(config).to(device).eval()
    ours.load_state_dict(convert_llamagen_gpt_state_dict(official.state_dict()))

    def run(fn):
        torch.manual_seed(0)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    official_seconds = run(lambda: official_generate(
        official, labels.to(device), config.block_size, cfg_scale=2.0, cfg_interval=-1,
        temperature=1.0, top_k=1000, top_p=1.0, sample_logits=True,
    ))
    generator = torch.Generator(device).manual_seed(0)
    ours_seconds = run(lambda: generate(ours, labels, guidance_scale=2.0, top_k=1000, generator=generator))
    return official_seconds, ours_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="4 layers, 256 hidden instead of GPT-B (a 2-core CPU).")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--official-checkout", help="path of a FoundationVision/LlamaGen checkout to compare with")
    args = parser.parse_args()

    overrides = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4} if args.small else {}
    config = LlamaGenGPTConfig.from_preset("GPT-B", block_size=256, **overrides)
    torch.manual_seed(0)
    model = LlamaGenGPTModel(config).to(args.device).eval()
    torch.nn.init.normal_(model.lm_head.weight, std=0.02)  # a trained-like, non-uniform head
    labels = torch.arange(args.batch_size) % config.num_classes

    timed_generate(model, labels[:1], use_cache=True)  # warm-up
    cached_tokens, cached_seconds = timed_generate(model, labels, use_cache=True)
    full_tokens, full_seconds = timed_generate(model, labels, use_cache=False)
    agree = (cached_tokens == full_tokens).float().mean().item()
    size = f"{model.num_parameters() / 1e6:.1f}M parameters"
    print(f"model: {size} on {args.device}, batch {args.batch_size} (x2 for CFG), 256 tokens")
    print(f"KV cache:          {cached_seconds:8.2f} s")
    print(f"recompute prefix:  {full_seconds:8.2f} s")
    print(f"speed-up: {full_seconds / cached_seconds:.1f}x (target >= 5x); tokens agree at {agree:.1%} of positions")
    if args.official_checkout:
        official_seconds, ours_seconds = time_official(args.official_checkout, config, labels, args.device)
        print(f"LlamaGen generate: {official_seconds:8.2f} s")
        ratio = official_seconds / ours_seconds
        print(f"hf_vq generate:    {ours_seconds:8.2f} s  ({ratio:.2f}x LlamaGen's speed; target >= 1x)")


if __name__ == "__main__":
    main()
