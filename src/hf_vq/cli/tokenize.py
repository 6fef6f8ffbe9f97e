"""``hf-vq tokenize``: encode an image dataset into a dataset of index sequences and labels."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("tokenize", help="Encode images with a tokenizer into a token dataset.")
    parser.add_argument("--tokenizer", required=True, help="hf_vq tokenizer folder (save_pretrained).")
    parser.add_argument(
        "--dataset", required=True,
        help="A datasets.save_to_disk folder, an imagefolder directory, or `embedded` (the crops of the photographs "
        "that ship with scikit-image; label = the photograph, 11 classes in train).")
    parser.add_argument("--split", default="train", help="Split of an imagefolder / DatasetDict (default train).")
    parser.add_argument("--output-dir", required=True, help="Where to save_to_disk the token dataset.")
    parser.add_argument("--image-column", default="image")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--augment", default="none", choices=["none", "flip", "ten_crop"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-proc", type=int, default=None, help="Worker processes (default: one).")
    parser.set_defaults(func=run)


def load_image_dataset(path: str, split: str):
    from pathlib import Path

    from datasets import DatasetDict, load_dataset, load_from_disk

    if path == "embedded":
        from ..data import load_embedded_dataset

        return load_embedded_dataset(split)
    saved = Path(path)
    if (saved / "dataset_info.json").exists() or (saved / "dataset_dict.json").exists():
        dataset = load_from_disk(path)
        return dataset[split] if isinstance(dataset, DatasetDict) else dataset
    return load_dataset("imagefolder", data_dir=path, split=split)


def run(args) -> int:
    from transformers import AutoModel

    from ..data.token_datasets import tokenize_dataset

    tokenizer = AutoModel.from_pretrained(args.tokenizer)
    tokens = tokenize_dataset(
        tokenizer, load_image_dataset(args.dataset, args.split), args.image_column, args.label_column,
        augment=args.augment, batch_size=args.batch_size, num_proc=args.num_proc,
    )
    tokens.save_to_disk(args.output_dir)
    print(f"Saved {len(tokens)} token sequences to {args.output_dir}")
    return 0
