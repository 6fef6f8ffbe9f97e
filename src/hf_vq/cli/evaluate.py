"""``hf-vq evaluate MODEL_DIR [--data embedded|FOLDER|HUB_DATASET] [--metrics ...] [--output metrics.json]``."""

from ..evaluation.fid import FID_PROTOCOLS
from ..evaluation.reconstruction import AVAILABLE_METRICS


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
    parser.add_argument("--fid-protocol", default="pytorch-fid", choices=FID_PROTOCOLS,
                        help="rFID protocol: pytorch-fid (float images, as ADM / IU-tokenizer; default) or "
                        "torch-fidelity (the torch-fidelity package on uint8 images, as the visual-tokenizer benchmark).")
    parser.add_argument("--fid-weights", default=None, help="FID Inception weights of the protocol "
                        "(pytorch-fid: pt_inception-2015-12-05-6726825d.pth; torch-fidelity: "
                        "weights-inception-2015-12-05-6726825d.pth).")
    parser.add_argument("--fid-reference", default=None,
                        help="Cache .npz of the originals' FID statistics (computed and saved when missing).")
    parser.add_argument("--device", default=None)
    parser.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..evaluation import evaluate_model_dir

    output = args.output or Path(args.model_dir) / "eval_metrics.json"
    results = evaluate_model_dir(
        args.model_dir, data=args.data, split=args.split, metrics=args.metrics, output=output,
        batch_size=args.batch_size, image_size=args.image_size, max_images=args.max_images,
        lpips_weights=args.lpips_weights, fid_weights=args.fid_weights, fid_reference=args.fid_reference,
        device=args.device, fid_protocol=args.fid_protocol,
    )
    print(results["benchmark_row"])
    if "rfid" in results:
        reference = results["rfid_reference"]
        print(f"rFID ({results['rfid_protocol']} protocol) against {reference['description']} "
              f"({reference['num_images']} images), {reference['path']}")
    print(f"Metrics written to {output}")
    return 0
