"""Rerun the ImageNet 64x64 benchmark table (xyfJASON/visual-tokenizer-pytorch) with hf_vq.

    python examples/rerun_imagenet64_table.py --quick                        # minutes per row on a CPU
    python examples/rerun_imagenet64_table.py --quick --data path/to/images  # same, on your images
    python examples/rerun_imagenet64_table.py --data ILSVRC/imagenet-1k      # full scale (GPU; days)

Every row is a YAML of ``configs/imagenet64/``. The full-scale run trains each as the YAML
says (SimpleCNN 256, batch 256, 500k steps at 64 px). ``--quick`` keeps each row's tokenizer,
quantizer and losses but trains a narrower SimpleCNN (``--hidden-dim`` 64) at 32 px for
``--max-steps`` 300 on the embedded scikit-image photographs (or ``--data``): a smoke-scale
rerun whose numbers show trends, not the published values.

After training, every row is evaluated on held-out images with ``hf_vq.evaluation``
(usage, PSNR, SSIM, and LPIPS / rFID when their network weights are on disk; a metric
whose weights are missing shows "-"). Written to ``--output-dir``:

* ``<row>/``: the trained model, ``metrics.json`` (end of training), ``eval_metrics.json``;
* ``imagenet64_table.md``: our numbers beside the published ones of the benchmark's
  ``docs/benchmark-imagenet64.md``, one line per row;
* ``imagenet64_usage.png``: codebook usage, ours beside the published one.

The published rFID uses torch-fidelity on 50k ImageNet validation images; ours uses the
reference set named in each ``eval_metrics.json``: compare rFID within one table only.
"""

import argparse
import copy
import json
import math
from pathlib import Path

import yaml

from hf_vq.training import TrainConfig, train
from hf_vq.utils.metric_tables import markdown_table

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs" / "imagenet64"
METRICS = ("codebook_usage", "psnr", "ssim", "lpips", "rfid")
# docs/benchmark-imagenet64.md of xyfJASON/visual-tokenizer-pytorch: usage (fraction), PSNR, SSIM, LPIPS, rFID.
PUBLISHED = {
    "vq_d64_k512": (0.9609, 26.8890, 0.8646, 0.1017, 39.2825),
    "vq_d64_k2048": (0.2896, 27.0770, 0.8704, 0.0916, 36.7708),
    "vq_d64_k16384": (0.0300, 26.8605, 0.8670, 0.0939, 38.1272),
    "vq_d8_k2048": (0.5889, 27.6575, 0.8833, 0.0792, 35.0210),
    "vq_d8_k16384": (0.2455, 28.5044, 0.9017, 0.0575, 27.1896),
    "vq_l2_d64_k2048": (0.8271, 27.3169, 0.8864, 0.0547, 22.6812),
    "vq_l2_d64_k16384": (0.2681, 27.8334, 0.8987, 0.0439, 18.5483),
    "vq_entropy_d64_k2048": (1.0000, 26.3328, 0.8617, 0.0952, 31.8191),
    "vq_entropy_d64_k16384": (0.8531, 26.7838, 0.8695, 0.0722, 27.1384),
    "fsq_8-8-8": (1.0000, 26.0826, 0.8456, 0.1179, 45.6580),
    "fsq_8-5-5-5": (1.0000, 26.1262, 0.8526, 0.1059, 43.4865),
    "fsq_8-8-8-6-5": (0.9999, 27.7061, 0.8907, 0.0669, 27.2670),
    "lfq_d9": (1.0000, 23.2721, 0.7423, 0.2314, 66.2169),
    "lfq_d11": (1.0000, 23.8259, 0.7770, 0.1980, 56.5064),
    "lfq_d14": (1.0000, 23.4815, 0.7736, 0.2007, 57.0378),
    "simvq_k512": (1.0000, 26.6992, 0.8638, 0.0960, 36.4991),
    "simvq_k2048": (1.0000, 27.7483, 0.8897, 0.0654, 27.4036),
    "simvq_k16384": (1.0000, 29.0372, 0.9145, 0.0421, 18.6821),
    "ibq_d64_k512": (1.0000, 23.2083, 0.7428, 0.2474, 270.1325),
    "ibq_d64_k2048": (1.0000, 23.9659, 0.7785, 0.2114, 270.8370),
    "ibq_d64_k16384": (1.0000, 25.0509, 0.8269, 0.1320, 274.7465),
}


def all_rows() -> list:
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def row_config(row: str, args) -> dict:
    """The row's YAML as a config dict, shrunk for --quick and pointed at --data / --output-dir."""
    path = CONFIG_DIR / f"{row}.yaml"
    if not path.is_file():
        raise ValueError(f"No row {row!r}: configs/imagenet64 has {all_rows()}.")
    raw = yaml.safe_load(path.read_text())
    raw["output_dir"] = str(Path(args.output_dir) / row)
    training, data, model = raw["training"], raw["data"], raw["model"]
    # A rerun starts fresh and keeps no intermediate checkpoints unless asked.
    training.update({"resume_from": None, "checkpoint_every": 0, "log_images_every": 0})
    if args.quick:
        model.update({"hidden_dim": args.hidden_dim, "image_size": args.image_size})
        data.update({"image_size": args.image_size, "num_workers": 0})
        training.update({"max_steps": args.max_steps, "batch_size": args.batch_size, "log_every": 50})
        raw["eval"] = {**raw.get("eval", {}), "batch_size": 64}
    elif args.max_steps is not None:
        training["max_steps"] = args.max_steps
    if args.learning_rate is not None:
        training["learning_rate"] = args.learning_rate
    for key in ("dataset", "train_data_dir", "eval_data_dir"):
        data.pop(key, None)
    if args.eval_data and Path(args.eval_data).is_dir():
        data["eval_data_dir"] = args.eval_data
    if args.eval_images:
        data["max_eval_images"] = args.eval_images
    if args.data is None or args.data == "embedded":
        data["dataset"] = "embedded"
    elif Path(args.data).is_dir():
        data["train_data_dir"] = args.data
    else:
        data["dataset"] = args.data
    return raw


def evaluation_source(args, config: dict):
    """(data, split) for ``evaluate_model_dir``, or None when the run's own held-out images are the only ones."""
    data = config["data"]
    if args.eval_data:
        return args.eval_data, data.get("eval_split", "validation")
    if "train_data_dir" in data:
        return None  # an image folder: metrics.json (held-out images of the folder) is the evaluation
    return data["dataset"], "validation" if data["dataset"] == "embedded" else data.get("eval_split", "validation")


def evaluate_row(run_dir: Path, args, config: dict) -> dict:
    """Metrics of one trained row: ``evaluate_model_dir`` (all five metrics whose weights exist) or metrics.json."""
    source = evaluation_source(args, config)
    if source is None or args.no_extra_eval:
        return json.loads((run_dir / "metrics.json").read_text())
    from hf_vq.evaluation.model_evaluation import evaluate_model_dir

    return evaluate_model_dir(run_dir, data=source[0], split=source[1], output=run_dir / "eval_metrics.json",
                              batch_size=64, max_images=args.eval_images, progress=False)


def _cell(value, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def comparison_table(results: dict) -> str:
    """One line per row: each metric as ``ours / published``."""
    header = ["Row", "Model", "Steps", "Usage (ours / published)", "PSNR", "SSIM", "LPIPS", "rFID"]
    lines = []
    for row, (config, metrics) in results.items():
        published = PUBLISHED.get(row, (None,) * len(METRICS))
        cells = [f"{_cell(metrics.get(key), key == 'codebook_usage')} / {_cell(value, key == 'codebook_usage')}"
                 for key, value in zip(METRICS, published)]
        lines.append([row, config["model"]["model_type"], config["training"]["max_steps"], *cells])
    return markdown_table(header, lines)


def usage_plot(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(results)
    ours = [100 * (results[row][1].get("codebook_usage") or 0.0) for row in rows]
    published = [100 * PUBLISHED[row][0] if row in PUBLISHED else float("nan") for row in rows]
    positions = range(len(rows))
    figure, axes = plt.subplots(figsize=(max(5.0, 0.7 * len(rows) + 2), 4))
    axes.bar([p - 0.2 for p in positions], ours, width=0.4, label="hf_vq (this run)", color="tab:blue")
    axes.bar([p + 0.2 for p in positions], published, width=0.4, label="published (500k steps)", color="tab:gray")
    axes.set_xticks(list(positions), rows, rotation=40, ha="right", fontsize=8)
    axes.set_ylabel("codebook usage (%)")
    axes.set_ylim(0, 110)
    axes.legend(fontsize=8)
    axes.set_title("ImageNet 64x64 benchmark rows: codebook usage")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def render(results: dict, args) -> str:
    scale = (f"--quick: SimpleCNN {args.hidden_dim} at {args.image_size} px, {args.max_steps} steps, batch "
             f"{args.batch_size}" if args.quick else "full scale: each YAML as written")
    if args.learning_rate is not None:
        scale += f", learning rate {args.learning_rate}"
    data = args.data or "embedded"
    text = [
        "# ImageNet 64x64 benchmark rows, rerun with hf_vq",
        "",
        f"Scale: {scale}. Training data: {data}. Each cell: ours / published (xyfJASON/visual-tokenizer-pytorch, "
        "docs/benchmark-imagenet64.md: 500k steps on ImageNet at 64 px). \"-\": not computed (missing network "
        "weights) or not published.",
        "",
        comparison_table(results),
        "",
    ]
    descriptions = sorted({metrics.get("eval_data") or metrics.get("data") or "" for _, metrics in results.values()} - {""})
    if descriptions:
        text.append("Our evaluation data: " + "; ".join(descriptions) + ".")
    references = sorted({json.dumps(metrics["rfid_reference"]) for _, metrics in results.values()
                         if isinstance(metrics.get("rfid_reference"), dict)})
    if references:
        text.append("Our rFID reference: " + "; ".join(references) + ". The published rFID uses torch-fidelity on "
                    "ImageNet validation: compare rFID within one table only.")
    return "\n".join(text) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke scale (see above)")
    parser.add_argument("--data", help="embedded (default), an image folder or a Hub dataset such as ILSVRC/imagenet-1k")
    parser.add_argument("--eval-data", help="evaluation images: an image folder or a Hub dataset (default: the "
                                            "embedded / Hub validation split, or held-out images of a --data folder)")
    parser.add_argument("--rows", help=f"comma-separated rows (default: all of configs/imagenet64: {', '.join(all_rows())})")
    parser.add_argument("--output-dir", default="outputs/rerun_imagenet64")
    parser.add_argument("--max-steps", type=int, default=None, help="training steps per row (--quick: 300)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="override every row's learning rate (default: the row's, 4e-4)")
    parser.add_argument("--hidden-dim", type=int, default=64, help="--quick: SimpleCNN width (the benchmark's is 256)")
    parser.add_argument("--image-size", type=int, default=32, help="--quick: resolution (the benchmark's is 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="--quick: batch size (the benchmark's is 256)")
    parser.add_argument("--eval-images", type=int, default=None, help="evaluate on the first N images only")
    parser.add_argument("--no-extra-eval", action="store_true",
                        help="use the end-of-training metrics.json instead of a separate evaluation")
    args = parser.parse_args(argv)
    if args.quick and args.max_steps is None:
        args.max_steps = 300
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    rows = args.rows.split(",") if args.rows else all_rows()
    results = {}
    for row in rows:
        raw = row_config(row, args)
        config = TrainConfig.from_dict(copy.deepcopy(raw))
        print(f"== {row}: {raw['model']['model_type']}, {raw['training']['max_steps']} steps")
        run_dir = Path(train(config))
        results[row] = (raw, evaluate_row(run_dir, args, raw))
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    text = render(results, args)
    (output_dir / "imagenet64_table.md").write_text(text)
    usage_plot(results, output_dir / "imagenet64_usage.png")
    print(text)
    print(f"Wrote {output_dir / 'imagenet64_table.md'} and {output_dir / 'imagenet64_usage.png'}")
    return results


if __name__ == "__main__":
    main()
