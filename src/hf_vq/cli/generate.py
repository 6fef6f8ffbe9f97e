"""``hf-vq generate``: images from a GPT + tokenizer, saved as files and a grid (or N samples for gFID)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="Generate class-conditional images with a GPT over a tokenizer.")
    parser.add_argument("--transformer", required=True, help="GPT folder (save_pretrained / hf-vq convert / train-ar).")
    parser.add_argument("--tokenizer", required=True, help="Tokenizer folder.")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--class-labels", type=int, nargs="+", help="Labels to draw (default: cycle over all classes).")
    parser.add_argument("--num-images-per-label", type=int, default=1)
    parser.add_argument("--num-samples", type=int, help="Instead of labels x images: N samples cycling over classes (gFID).")
    parser.add_argument(
        "--guidance-scale", type=float, default=None,
        help="classifier-free guidance scale (default: hf_vq.generation.DEFAULT_GUIDANCE_SCALE, 2.0)",
    )
    parser.add_argument("--cfg-interval", type=int, default=-1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fid-reference", help="Reference FID statistics (.npz, e.g. from hf-vq evaluate --fid-reference): writes gfid.json."
    )
    parser.add_argument("--fid-weights", help="FID Inception weights file (default: torch's hub cache).")
    parser.set_defaults(func=run)


def run(args) -> int:
    import os

    import torch
    from transformers import AutoModel

    from ..generation import DEFAULT_GUIDANCE_SCALE, generate_samples, make_grid

    device = "cuda" if torch.cuda.is_available() else "cpu"
    transformer = AutoModel.from_pretrained(args.transformer).to(device).eval()
    tokenizer = AutoModel.from_pretrained(args.tokenizer).to(device).eval()
    if args.num_samples is not None:
        labels, count = None, args.num_samples
    else:
        chosen = args.class_labels or list(range(transformer.config.num_classes))
        labels = [label for label in chosen for _ in range(args.num_images_per_label)]
        count = len(labels)
    samples = generate_samples(
        transformer, tokenizer, count, output_dir=args.output_dir, class_labels=labels, batch_size=args.batch_size,
        seed=args.seed, guidance_scale=DEFAULT_GUIDANCE_SCALE if args.guidance_scale is None else args.guidance_scale, cfg_interval=args.cfg_interval,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
    )
    grid_path = os.path.join(args.output_dir, "grid.png")
    # One row per label when several images per label were asked for.
    columns = args.num_images_per_label if args.num_samples is None and args.num_images_per_label > 1 else None
    make_grid(samples[:64], num_columns=columns).save(grid_path)
    print(f"Saved {len(samples)} images and {grid_path}")
    if args.fid_reference:
        import json

        from ..evaluation import compute_gfid, load_fid_inception

        result = compute_gfid(samples, args.fid_reference, load_fid_inception(args.fid_weights).to(device))
        gfid_path = os.path.join(args.output_dir, "gfid.json")
        with open(gfid_path, "w") as handle:
            json.dump(result, handle, indent=2)
        print(f"gFID {result['gfid']:.4f} on {result['num_samples']} samples against {result['reference']} -> {gfid_path}")
    return 0
