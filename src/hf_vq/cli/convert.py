"""``hf-vq convert SOURCE CKPT OUT_DIR``: official checkpoints -> save_pretrained folders.

Each source is one entry of ``CONVERTERS`` (name -> function adding its parser), so a new
converter (e.g. ``llamagen-gpt``) is one more function and one more entry.
"""

# The converters' preset names, spelled out so that `--help` imports no torch
# (tests/test_cli_errors.py checks they agree with hf_vq.convert).
TAMING_PRESET_NAMES = ("f16-1024", "f16-16384")
LLAMAGEN_PRESET_NAMES = ("vq-16", "vq-8")
LLAMAGEN_WEIGHTS = ("model", "ema")
VQGAN_LC_PRESET_NAMES = ("f16", "f8")
TITOK_VARIANT_NAMES = ("s128", "b64", "l32", "bl64-vq8k", "bl128-vq8k", "sl256-vq8k")
VQKD_VARIANT_NAMES = (
    "vqkd_encoder_base_decoder_1x768x12_clip", "vqkd_encoder_base_decoder_3x768x12_clip", "vqkd_encoder_base_decoder_1x768x12_dino",
)
VQKD_TEACHER_FEATURES = ("projected", "post_layernorm", "last_hidden_state")


def register(subparsers) -> None:
    parser = subparsers.add_parser("convert", help="Convert an official checkpoint to a save_pretrained folder.")
    sources = parser.add_subparsers(dest="source", metavar="SOURCE")
    for add_parser in CONVERTERS.values():
        add_parser(sources)
    parser.set_defaults(func=lambda args: parser.print_help() or 1)


def _add_paths(parser) -> None:
    parser.add_argument("checkpoint", help="official checkpoint file")
    parser.add_argument("out_dir", help="output folder (model + image processor)")
    parser.add_argument("--image-size", type=int, default=256, help="training resolution recorded with the model (256)")


def add_taming_parser(sources) -> None:
    parser = sources.add_parser("taming", help="taming-transformers VQGAN (.ckpt with state_dict)")
    _add_paths(parser)
    parser.add_argument(
        "--preset", choices=sorted(TAMING_PRESET_NAMES), default=None,
        help="architecture preset (default: inferred from the weight shapes)",
    )
    parser.set_defaults(func=run_taming)


def run_taming(args) -> int:
    from ..convert import convert_taming_checkpoint

    convert_taming_checkpoint(args.checkpoint, args.out_dir, preset=args.preset, image_size=args.image_size)
    print(f"Saved VQGANModel and VQImageProcessor to {args.out_dir}")
    return 0


def add_llamagen_parser(sources) -> None:
    parser = sources.add_parser("llamagen", help="LlamaGen VQ tokenizer (vq_ds16_c2i.pt, vq_ds8_c2i.pt)")
    _add_paths(parser)
    parser.add_argument(
        "--preset", choices=sorted(LLAMAGEN_PRESET_NAMES), default=None,
        help="architecture preset (default: inferred from the weight shapes)",
    )
    parser.add_argument("--weights", choices=LLAMAGEN_WEIGHTS, default="model", help="weights of a training checkpoint to take")
    parser.set_defaults(func=run_llamagen)


def run_llamagen(args) -> int:
    from ..convert import convert_llamagen_checkpoint

    convert_llamagen_checkpoint(
        args.checkpoint, args.out_dir, preset=args.preset, image_size=args.image_size, weights=args.weights
    )
    print(f"Saved LlamaGenVQModel and VQImageProcessor to {args.out_dir}")
    return 0


def add_llamagen_gpt_parser(sources) -> None:
    parser = sources.add_parser("llamagen-gpt", help="LlamaGen class-conditional GPT (c2i_*.pt)")
    parser.add_argument("checkpoint", help="official checkpoint (.pt), e.g. c2i_B_256.pt")
    parser.add_argument("out_dir", help="output folder (save_pretrained)")
    parser.add_argument(
        "--preset", required=True, help="GPT-B, GPT-L, GPT-XL, GPT-XXL or GPT-3B (head counts are not in the weights)"
    )
    parser.add_argument("--block-size", type=int, default=256, help="image tokens: 256 for 256px VQ-16, 576 for 384px")
    parser.set_defaults(func=run_llamagen_gpt)


def run_llamagen_gpt(args) -> int:
    from ..convert.llamagen_gpt import convert_llamagen_gpt_checkpoint

    model = convert_llamagen_gpt_checkpoint(args.checkpoint, args.out_dir, args.preset, block_size=args.block_size)
    print(f"Saved {type(model).__name__} ({model.num_parameters():,} parameters) to {args.out_dir}")
    return 0


def add_visual_tokenizer_parser(sources) -> None:
    parser = sources.add_parser(
        "visual-tokenizer", help="ImageNet 64x64 benchmark SimpleCNN tokenizers (model.pt with {'model': state_dict})"
    )
    parser.add_argument("checkpoint", help="the benchmark's model.pt")
    parser.add_argument("out_dir", help="output folder (model + image processor)")
    parser.add_argument(
        "--config", required=True,
        help="the row's training YAML, e.g. configs/imagenet64/vq_d64_k512.yaml (its model: section; the quantizer "
             "kind is not in the weights)",
    )
    parser.set_defaults(func=run_visual_tokenizer)


def run_visual_tokenizer(args) -> int:
    from ..convert.visual_tokenizer import convert_visual_tokenizer_checkpoint

    model = convert_visual_tokenizer_checkpoint(args.checkpoint, args.out_dir, args.config)
    print(f"Saved {type(model).__name__} and VQImageProcessor to {args.out_dir}")
    return 0


def add_vqgan_lc_parser(sources) -> None:
    parser = sources.add_parser("vqgan-lc", help="VQGAN-LC (vqgan-lc-100K-f16-dim8.pth and the f8 model)")
    _add_paths(parser)
    parser.add_argument("--codebook", default=None,
                        help="the frozen codebook file (codebook-100K.pth) when the checkpoint lacks tok_embeddings")
    parser.add_argument(
        "--preset", choices=sorted(VQGAN_LC_PRESET_NAMES), default=None,
        help="architecture preset (default: inferred from the weight shapes)",
    )
    parser.set_defaults(func=run_vqgan_lc)


def run_vqgan_lc(args) -> int:
    from ..convert.vqgan_lc import convert_vqgan_lc_checkpoint

    convert_vqgan_lc_checkpoint(args.checkpoint, args.out_dir, codebook=args.codebook, preset=args.preset,
                                image_size=args.image_size)
    print(f"Saved VQGANLCModel and VQImageProcessor to {args.out_dir}")
    return 0


def add_titok_parser(sources) -> None:
    parser = sources.add_parser(
        "titok", help="TiTok 1D tokenizer (tokenizer_titok_{s128,b64,l32}.bin, or a Hub folder with model.safetensors)"
    )
    parser.add_argument("checkpoint", help="official tokenizer state dict (.bin/.pt/.safetensors) or Hub folder")
    parser.add_argument("out_dir", help="output folder (model + image processor)")
    parser.add_argument(
        "--variant", choices=TITOK_VARIANT_NAMES, default=None,
        help="architecture (default: the Hub folder's config.json, else inferred from the weight shapes)",
    )
    parser.set_defaults(func=run_titok)


def run_titok(args) -> int:
    from ..convert import convert_titok_checkpoint

    model = convert_titok_checkpoint(args.checkpoint, args.out_dir, variant=args.variant)
    print(f"Saved TiTokModel ({model.num_parameters():,} parameters) and VQImageProcessor to {args.out_dir}")
    return 0


def add_maskgit_vqgan_parser(sources) -> None:
    parser = sources.add_parser(
        "maskgit-vqgan", help="MaskGIT-VQGAN (maskgit-vqgan-imagenet-f16-256.bin, the proxy tokenizer of TiTok stage 1)"
    )
    _add_paths(parser)
    parser.set_defaults(func=run_maskgit_vqgan)


def run_maskgit_vqgan(args) -> int:
    from ..convert import convert_maskgit_vqgan_checkpoint

    convert_maskgit_vqgan_checkpoint(args.checkpoint, args.out_dir, image_size=args.image_size)
    print(f"Saved MaskGITVQGANModel and VQImageProcessor to {args.out_dir}")
    return 0


def add_vqkd_parser(sources) -> None:
    parser = sources.add_parser(
        "vqkd", help="BEiT v2 VQ-KD tokenizer (vqkd_encoder_base_decoder_{1,3}x768x12_{clip,dino}-*.pth)"
    )
    parser.add_argument("checkpoint", help="official checkpoint (.pth, weights under `model`)")
    parser.add_argument("out_dir", help="output folder (model + image processor)")
    parser.add_argument(
        "--variant", choices=VQKD_VARIANT_NAMES, default=None,
        help="the official model name (default: inferred from the weight shapes)",
    )
    parser.add_argument("--num-heads", type=int, default=None,
                        help="attention heads when inferring (not in the weights; default width / 64 = 12 for ViT-B)")
    parser.add_argument("--teacher", default=None,
                        help="teacher to record in the config (default: openai/clip-vit-base-patch16 for 512-d targets, "
                             "facebook/dino-vitb16 for 768-d)")
    parser.add_argument("--teacher-features", choices=VQKD_TEACHER_FEATURES, default=None,
                        help="which teacher features the decoder predicts (default: projected for CLIP, last_hidden_state for DINO)")
    parser.set_defaults(func=run_vqkd)


def run_vqkd(args) -> int:
    from ..convert.vqkd import convert_vqkd_checkpoint

    model = convert_vqkd_checkpoint(args.checkpoint, args.out_dir, variant=args.variant, num_heads=args.num_heads,
                                    teacher=args.teacher, teacher_features=args.teacher_features)
    print(f"Saved VQKDModel ({model.num_parameters():,} parameters) and VQImageProcessor to {args.out_dir}")
    return 0


CONVERTERS = {
    "taming": add_taming_parser,
    "llamagen": add_llamagen_parser,
    "llamagen-gpt": add_llamagen_gpt_parser,
    "visual-tokenizer": add_visual_tokenizer_parser,
    "vqgan-lc": add_vqgan_lc_parser,
    "titok": add_titok_parser,
    "maskgit-vqgan": add_maskgit_vqgan_parser,
    "vqkd": add_vqkd_parser,
}
