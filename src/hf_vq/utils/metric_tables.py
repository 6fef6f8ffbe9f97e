"""Metric rows in the format of the benchmark pages (used by benchmark tables and model cards).

A row reads ``| Codebook usage | PSNR | SSIM | LPIPS | rFID |``: usage as a percentage
with 2 decimals, the other metrics with 4; a metric that was not computed shows "-".
"""

import math

METRIC_COLUMNS = ("Codebook usage↑", "PSNR↑", "SSIM↑", "LPIPS↓", "rFID↓")
METRIC_KEYS = ("codebook_usage", "psnr", "ssim", "lpips", "rfid")


def _format_number(value, decimals: int, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * 100:.{decimals}f}%" if percent else f"{value:.{decimals}f}"


def metric_cells(metrics: dict) -> list:
    cells = [_format_number(metrics.get("codebook_usage"), 2, percent=True)]
    cells += [_format_number(metrics.get(key), 4) for key in METRIC_KEYS[1:]]
    return cells


def markdown_table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(":---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_markdown(metrics: dict) -> str:
    """The metrics of one evaluation as a header + one row of the benchmark pages."""
    return markdown_table(list(METRIC_COLUMNS), [metric_cells(metrics)])


__all__ = ["METRIC_COLUMNS", "METRIC_KEYS", "markdown_table", "metric_cells", "metrics_markdown"]
