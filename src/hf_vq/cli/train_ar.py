"""``hf-vq train-ar``: train a LlamaGen GPT on a token dataset (from ``hf-vq tokenize``)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("train-ar", help="Train a class-conditional GPT on token sequences.")
    parser.add_argument("--tokens", required=True, help="Token dataset folder (hf-vq tokenize --output-dir).")
    parser.add_argument("--tokenizer", required=True, help="The tokenizer that made the tokens (for its codebook size).")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--preset", default="GPT-B", help="GPT-B, GPT-L, GPT-XL, GPT-XXL, GPT-3B.")
    parser.add_argument("--hidden-size", type=int, help="Override the preset (small experiments).")
    parser.add_argument("--num-layers", type=int, help="Override the preset.")
    parser.add_argument("--num-heads", type=int, help="Override the preset.")
    parser.add_argument("--num-classes", type=int, help="Default: largest label + 1.")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="Continue from the latest checkpoint in --output-dir.")
    parser.set_defaults(func=run)


def run(args) -> int:
    from datasets import load_from_disk
    from transformers import AutoConfig

    from ..models.llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel
    from ..training.ar_trainer import ARTrainingArguments, train_ar

    tokens = load_from_disk(args.tokens)
    tokenizer_config = AutoConfig.from_pretrained(args.tokenizer)
    overrides = {
        key: value
        for key, value in (
            ("hidden_size", args.hidden_size), ("num_hidden_layers", args.num_layers), ("num_attention_heads", args.num_heads)
        )
        if value is not None
    }
    block_size = len(tokens[0]["input_ids"])
    grid_side = round(block_size**0.5)
    config = LlamaGenGPTConfig.from_preset(
        args.preset,
        vocab_size=tokenizer_config.codebook_size,
        block_size=block_size,
        rope_type="2d" if grid_side * grid_side == block_size else "1d",
        num_classes=args.num_classes or max(tokens["class_labels"]) + 1,
        **overrides,
    )
    training = ARTrainingArguments(
        output_dir=args.output_dir, max_steps=args.max_steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        checkpoint_every=args.checkpoint_every, mixed_precision=args.mixed_precision, seed=args.seed, resume=args.resume,
    )
    losses = train_ar(LlamaGenGPTModel(config), tokens, training)
    print(f"Trained {len(losses)} steps, last loss {losses[-1]:.4f}; saved to {args.output_dir}" if losses else "Nothing to train.")
    return 0
