"""``hf-vq evaluate MODEL_DIR [--data embedded|FOLDER|HUB_DATASET] [--metrics ...] [--output metrics.json]``."""

# The metric names of hf_vq.evaluation.AVAILABLE_METRICS, spelled out so that `--help` imports no torch
# (tests/test_cli_errors.py checks they agree).
AVAILABLE_METRICS = ("usage", "psnr", "ssim", "lpips", "rfid")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="Reconstruct an evaluation set and report usage, perplexity, PSNR, SSIM, LPIPS and rFID.",
        description="Evaluate a saved tokenizer on center-cropped images. Metrics whose weights are missing "
        "(LPIPS AlexNet, FID Inception) are skipped with a message saying where to put the file.",
    )
    parser.add_argument("model_dir", help="Directory with the saved tokenizer (config.json + weights).")
    parser.add_argument("--data", default="embedded", help="'embedded' (default), an image folder, or a Hub dataset name.")
    parser.add_argument("--split", default="validation", help="Split of the embedded or Hub dataset (default: validation).")
    parser.add_argument("--metrics", nargs="+", default=list(AVAILABLE_METRICS), choices=AVAILABLE_METRICS,
                        help="Metrics to compute (default: all).")
    parser.add_argument("--output", default=None, help="Metrics JSON to write (default: MODEL_DIR/eval_metrics.json).")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=None, help="Crop size (default: the model's image processor).")
    parser.add_argument("--max-images", type=int, default=None, help="Evaluate the first N images only.")
    parser.add_argument("--lpips-weights", default=None, help="torchvision AlexNet weights (alexnet-owt-7be5be79.pth).")
    parser.add_argument("--fid-weights", default=None, help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth).")
    parser.add_argument("--fid-reference", default=None,
                        help="Cache .npz of the originals' FID statistics (computed and saved when missing).")
    parser.add_argument("--device", default=None)
    parser.set_defaults(func=run)


def looks_like_a_path(data: str) -> bool:
    """A --data value meant as a local folder (a Hub dataset is ``name`` or ``namespace/name``)."""
    return data.startswith((".", "/", "~")) or data.endswith("/") or data.count("/") > 1 or "\\" in data


def check_arguments(args) -> None:
    """The user errors hf-vq can name before loading anything: missing model folder or data folder."""
    import json
    from pathlib import Path

    from ..utils.errors import UsageError

    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise UsageError(f"Model folder {args.model_dir} does not exist: give the folder the tokenizer was saved to.")
    if not (model_dir / "config.json").is_file():
        raise UsageError(f"{args.model_dir} has no config.json: it is not a saved model (save it with save_pretrained).")
    model_type = json.loads((model_dir / "config.json").read_text()).get("model_type")
    if model_type == "llamagen_gpt":
        raise UsageError(f"{args.model_dir} holds a GPT ({model_type}); `hf-vq evaluate` evaluates a tokenizer.")
    if args.data != "embedded" and not Path(args.data).expanduser().exists() and looks_like_a_path(args.data):
        raise UsageError(f"--data folder {args.data} does not exist: give an image folder, a Hub dataset name or 'embedded'.")
    if args.max_images is not None and args.max_images < 1:
        raise UsageError(f"--max-images must be at least 1; got {args.max_images}.")


def run(args) -> int:
    from pathlib import Path

    from ..evaluation import evaluate_model_dir

    check_arguments(args)

    output = args.output or Path(args.model_dir) / "eval_metrics.json"
    results = evaluate_model_dir(
        args.model_dir, data=args.data, split=args.split, metrics=args.metrics, output=output,
        batch_size=args.batch_size, image_size=args.image_size, max_images=args.max_images,
        lpips_weights=args.lpips_weights, fid_weights=args.fid_weights, fid_reference=args.fid_reference,
        device=args.device,
    )
    print(results["benchmark_row"])
    if "rfid" in results:
        reference = results["rfid_reference"]
        print(f"rFID against {reference['description']} ({reference['num_images']} images), {reference['path']}")
    print(f"Metrics written to {output}")
    return 0
