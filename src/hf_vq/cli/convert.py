"""``hf-vq convert SOURCE CKPT OUT_DIR ...``: official checkpoints -> hf_vq models.

One function per source: ``register_<source>(convert_subparsers)`` adds its parser; a new
source adds its function and one line in ``register``.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("convert", help="Convert an official checkpoint into an hf_vq model folder.")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    register_llamagen_gpt(sources)


def register_llamagen_gpt(sources) -> None:
    parser = sources.add_parser("llamagen-gpt", help="LlamaGen class-conditional GPT (c2i_*.pt).")
    parser.add_argument("checkpoint", help="Official checkpoint (.pt), e.g. c2i_B_256.pt.")
    parser.add_argument("out_dir", help="Folder for save_pretrained.")
    parser.add_argument("--preset", required=True, help="GPT-B, GPT-L, GPT-XL, GPT-XXL or GPT-3B (heads are not in the weights).")
    parser.add_argument("--block-size", type=int, default=256, help="Image tokens: 256 for 256px VQ-16, 576 for 384px.")
    parser.set_defaults(func=run_llamagen_gpt)


def run_llamagen_gpt(args) -> int:
    from ..convert.llamagen_gpt import convert_llamagen_gpt_checkpoint

    model = convert_llamagen_gpt_checkpoint(args.checkpoint, args.out_dir, args.preset, block_size=args.block_size)
    print(f"Saved {type(model).__name__} ({model.num_parameters():,} parameters) to {args.out_dir}")
    return 0
