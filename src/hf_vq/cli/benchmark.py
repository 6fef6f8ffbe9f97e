"""``hf-vq benchmark RUN_DIR [RUN_DIR ...] [--output table.md] [--plot usage.png]``."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="Render the benchmark table (and a codebook-usage plot) of several runs.",
        description="Read each run's config.json, train_config.json and eval_metrics.json / metrics.json and "
        "print the table in the benchmark pages' format.",
    )
    parser.add_argument("run_dirs", nargs="+", help="Run directories (model saved by `hf-vq train`).")
    parser.add_argument("--output", default=None, help="Write the markdown table to this file.")
    parser.add_argument("--plot", default=None, help="Save a PNG bar chart of codebook usage per run.")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation import render_benchmark

    print(render_benchmark(args.run_dirs, table_path=args.output, plot_path=args.plot), end="")
    if args.plot:
        print(f"Codebook usage plot saved to {args.plot}")
    return 0
