"""``hf-vq build-codebook``: a k-means codebook of a frozen teacher's patch features (VQGAN-LC's recipe)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "build-codebook",
        help="k-means codebook of teacher patch features (VQGAN-LC: CLIP ViT-L/14, 100 codes per ImageNet class).",
    )
    parser.add_argument("--teacher", required=True, help="CLIP / DINO / DINOv2 checkpoint: Hub name or local folder.")
    parser.add_argument("--teacher-features", default=None,
                        help="CLIP: projected (default), post_layernorm or last_hidden_state.")
    parser.add_argument("--teacher-image-size", type=int, default=None, help="Teacher resolution (default: its own).")
    parser.add_argument("--data", required=True, help="An imagefolder directory (one folder per class) or a save_to_disk folder.")
    parser.add_argument("--split", default="train")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--codes", type=int, required=True, help="Codebook size (a multiple of the number of classes).")
    parser.add_argument("--output", required=True, help="Output .safetensors file (tensor 'codebook').")
    parser.add_argument("--no-per-class", dest="per_class", action="store_false",
                        help="One k-means over all features instead of one per class.")
    parser.add_argument("--pool", type=int, default=4, help="Average-pool the patch grid by this factor (4).")
    parser.add_argument("--iters", type=int, default=50, help="Lloyd iterations at most.")
    parser.add_argument("--init", default="k-means++", choices=["k-means++", "random"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="Resumable state (default: OUTPUT.work); rerun to resume.")
    parser.add_argument("--device", default=None, help="Device of the teacher (default: cuda if available).")
    parser.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..data.teacher_codebook import build_codebook
    from ..modules.teachers import FrozenTeacher
    from .tokenize import load_image_dataset

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    teacher = FrozenTeacher.from_pretrained(
        args.teacher, features=args.teacher_features, image_size=args.teacher_image_size
    ).to(device)
    dataset = load_image_dataset(args.data, args.split)
    codebook = build_codebook(
        teacher, dataset, args.codes, args.output, image_column=args.image_column, label_column=args.label_column,
        per_class=args.per_class, pool=args.pool, max_iters=args.iters, init=args.init, batch_size=args.batch_size,
        seed=args.seed, work_dir=args.work_dir,
    )
    print(f"Saved a {codebook.shape[0]} x {codebook.shape[1]} codebook to {args.output}")
    return 0
