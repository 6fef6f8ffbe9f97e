"""``hf-vq demo [MODEL_DIR_OR_HUB_ID ...] [--gpt GPT_DIR] [--port N] [--share]``: the tokenizer playground."""

DEFAULT_MODEL_DIR = "outputs/demo-vqvae"  # hf_vq.demo.DEFAULT_MODEL_DIR, spelled out so `--help` imports no torch


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="Open the tokenizer playground in the browser (Gradio; needs the `demo` extra).",
        description="Reconstruct your images with each tokenizer side by side (PSNR, SSIM, LPIPS, the token map, "
        "replacing one token), look at codebook usage, sample from a GPT and compare benchmark runs.",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL_DIR_OR_HUB_ID",
                        help=f"Tokenizers to show side by side (default: {DEFAULT_MODEL_DIR}, made by `hf-vq train`).")
    parser.add_argument("--gpt", default=None, metavar="GPT_DIR", help="A GPT (`hf-vq train-ar`): adds the Generate tab.")
    parser.add_argument("--port", type=int, default=None, help="Port (default: Gradio's, 7860 or the next free one).")
    parser.add_argument("--host", default=None, help="Address to listen on (default 127.0.0.1; 0.0.0.0 for others).")
    parser.add_argument("--share", action="store_true", help="Also open a public gradio.live link (needs internet).")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available).")
    parser.add_argument("--lpips-weights", default=None, help="torchvision AlexNet weights for LPIPS (default: hub cache).")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..utils.errors import UsageError

    try:
        import gradio  # noqa: F401
    except ImportError as error:
        raise UsageError('hf-vq demo needs gradio: pip install "hf_vq[demo]"') from error
    import torch

    from ..demo.app import build_demo_from_sources, launch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    demo = build_demo_from_sources(args.models, args.gpt, device=device, lpips_weights=args.lpips_weights)
    launch(demo, port=args.port, share=args.share, host=args.host)
    return 0
