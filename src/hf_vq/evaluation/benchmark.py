"""Benchmark tables in the format of the benchmark pages, and a codebook-usage plot.

The row format (``hf_vq.utils.metric_tables``) is shared with the model cards.
A run directory holds ``config.json`` (the model), optionally ``train_config.json`` and
``eval_metrics.json`` (from ``hf-vq evaluate``) or ``metrics.json`` (from training).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ..utils.metric_tables import (  # noqa: F401  (METRIC_KEYS, metrics_markdown: re-exported, the row format moved to utils)
    METRIC_COLUMNS,
    METRIC_KEYS,
    markdown_table,
    metric_cells,
    metrics_markdown,
)

# Evaluation metrics win over the end-of-training ones when a run has both.
METRICS_FILES = ("eval_metrics.json", "metrics.json")


@dataclass
class RunSummary:
    name: str
    model_config: dict
    train_config: dict
    metrics: dict
    metrics_file: str

    @property
    def train_steps(self):
        training = self.train_config.get("training") or {}
        return self.metrics.get("train_steps") or training.get("max_steps")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def load_run(run_dir) -> RunSummary:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Run directory {run_dir} does not exist.")
    metrics_path = next((run_dir / name for name in METRICS_FILES if (run_dir / name).is_file()), None)
    if metrics_path is None:
        raise FileNotFoundError(
            f"{run_dir} has no {' or '.join(METRICS_FILES)}; run `hf-vq evaluate {run_dir}` first."
        )
    model_config = _read_json(run_dir / "config.json") if (run_dir / "config.json").is_file() else {}
    train_config = _read_json(run_dir / "train_config.json") if (run_dir / "train_config.json").is_file() else {}
    return RunSummary(run_dir.name, model_config, train_config, _read_json(metrics_path), metrics_path.name)


def _codebook_dim(config: dict):
    if config.get("levels"):
        return f"{config['levels']}".replace(" ", "")
    return config.get("codebook_dim", "-")


def benchmark_table(runs) -> str:
    """Markdown table of several runs: what each model is, then the five metrics."""
    header = ["Run", "Model", "Codebook dim.", "Codebook size", "l2 norm", "Steps", *METRIC_COLUMNS]
    rows = []
    for run in runs:
        config = run.model_config
        steps = run.train_steps
        rows.append([
            run.name,
            config.get("model_type", "-"),
            _codebook_dim(config),
            config.get("codebook_size", "-"),
            config.get("l2_norm", "-"),
            "-" if steps is None else steps,
            *metric_cells(run.metrics),
        ])
    return markdown_table(header, rows)


def plot_codebook_usage(runs, path) -> Path:
    """Bar chart of codebook usage (%) per run, saved as PNG (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [run.name for run in runs]
    usage = [100 * (run.metrics.get("codebook_usage") or 0.0) for run in runs]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.2 * len(runs) + 2), 3.5))
    bars = axes.bar(range(len(runs)), usage, color="tab:blue")
    axes.bar_label(bars, labels=[f"{value:.2f}%" for value in usage], fontsize=8)
    axes.set_xticks(range(len(runs)), names, rotation=30, ha="right")
    axes.set_ylabel("codebook usage (%)")
    axes.set_ylim(0, 110)
    axes.set_title("Codebook usage over the evaluation set")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def render_benchmark(run_dirs, table_path=None, plot_path=None) -> str:
    """Table of ``run_dirs`` (returned, and written to ``table_path``), usage plot to ``plot_path``."""
    runs = [load_run(run_dir) for run_dir in run_dirs]
    table = benchmark_table(runs)
    notes = sorted({run.metrics.get("eval_data") for run in runs if run.metrics.get("eval_data")})
    references = sorted({
        f"{run.metrics['rfid_reference']['description']} ({run.metrics['rfid_reference']['num_images']} images)"
        for run in runs if run.metrics.get("rfid_reference")
    })
    text = table + "\n"
    if notes:
        text += "\nEvaluation data: " + "; ".join(notes) + "\n"
    if references:
        text += "rFID reference statistics: " + "; ".join(references) + "\n"
    if table_path:
        Path(table_path).parent.mkdir(parents=True, exist_ok=True)
        Path(table_path).write_text(text)
    if plot_path:
        plot_codebook_usage(runs, plot_path)
    return text
