"""``hf-vq push MODEL_DIR REPO_ID``: upload a tokenizer, its image processor and its model card."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "push",
        help="Upload a saved tokenizer, its image processor and a generated model card to the Hub.",
        description="Writes MODEL_DIR/README.md from the hf_vq card template (architecture, config, training, "
        "metrics from eval_metrics.json or metrics.json), then uploads the folder.",
    )
    parser.add_argument("model_dir", help="Directory with the saved tokenizer.")
    parser.add_argument("repo_id", help="Hub repository, e.g. username/vqvae-embedded.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--dry-run", action="store_true", help="Write the card and list the files; upload nothing.")
    parser.add_argument("--commit-message", default=None)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..hub import prepare_push_folder, push_to_hub

    if args.dry_run:
        files = prepare_push_folder(args.model_dir, args.repo_id)
        print(f"Would upload to {args.repo_id}:", *files, sep="\n  ")
        return 0
    commit = push_to_hub(args.model_dir, args.repo_id, private=args.private or None, commit_message=args.commit_message)
    print(f"Uploaded {args.model_dir} to {getattr(commit, 'commit_url', args.repo_id)}")
    return 0
