"""One picture of the TiTok small run's GAN question: how much each GAN setting sharpens the reconstructions,
and how much it paints at the same place in every image.

    python examples/titok_gan_template_plot.py   # reads docs/titok_small_run_conv*/titok_small_run.json,
                                                 # writes docs/titok_small_run_gan_template.png

Each point is one (report, seed) of ``examples/titok_small_run.py`` that has the template measure:
x = the Gaussian blur (sigma, px) that gives the held-out photographs the run's in-cell detail (smaller: sharper),
y = the run's template fraction over that of the photographs blurred as much (the script's check asks for at
most 2). Points without the GAN (the L2 run) and with it (fixed weights, DiffAugment, the adaptive weight, a
discriminator with fewer stages) are
marked apart, so one sees whether any setting is both sharper than L2 and under the bar.
"""

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_BAR = 2.0  # examples/titok_small_run.py: template fraction <= 2 x the equally smooth photographs'
DEFAULT_DISC_STAGES = 2  # examples/titok_small_run.py: GAN_DISCRIMINATOR's stages (reports before --disc-stages)


def setting_label(report: dict) -> str:
    """What the run trained with, from its report: "L2", "GAN 0.01", "GAN 0.01 + DiffAugment", "GAN 0.1 adaptive",
    "GAN 0.01, 1-stage discriminator"."""
    gan = report.get("gan")
    if not gan:
        return "L2"
    label = f"GAN {gan['weight']:g}"
    if gan.get("adaptive"):
        label += " adaptive"
    if gan.get("augment"):
        label += " + DiffAugment"
    stages = gan.get("stages", DEFAULT_DISC_STAGES)
    if stages != DEFAULT_DISC_STAGES:
        label += f", {stages}-stage discriminator"
    return label


def template_points(report_paths: list) -> list:
    """(setting, run name, sigma, template ratio) for every run of the given reports that has the template measure."""
    points = []
    for path in report_paths:
        report = json.loads(Path(path).read_text())
        for name, row in report["metrics"].items():
            if "template_fraction" not in row:
                continue  # reports from before the template measure
            ratio = row["template_fraction"] / row["equally_smooth_template_fraction"]
            points.append((setting_label(report), name, row["equally_smooth_sigma"], ratio))
    return points


def plot(points: list, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    settings = sorted({setting for setting, *_ in points}, key=lambda s: (s != "L2", s))
    markers = {"seed 0": "o", "seed 1": "s"}
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    for index, setting in enumerate(settings):
        colour = f"C{index}"
        for _, name, sigma, ratio in (p for p in points if p[0] == setting):
            seed = name.split(", ")[-1]
            axes.scatter(sigma, ratio, color=colour, marker=markers.get(seed, "^"), s=55, label=setting)
    axes.axhline(TEMPLATE_BAR, color="grey", linestyle="--", linewidth=1)
    axes.text(0.99, TEMPLATE_BAR, "the check's bar (2 x) ", transform=axes.get_yaxis_transform(), ha="right",
              va="bottom", color="grey", fontsize=8)
    axes.invert_xaxis()  # sharper to the right
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_yticks([1, 1.5, 2, 3, 5, 10, 20])
    axes.set_xlabel("equally smooth blur sigma, px (smaller = sharper)")
    axes.set_ylabel("template fraction / equally smooth photographs'")
    axes.set_title("TiTok small run, conv decoder, 8000 steps: sharpness vs template\n(circles seed 0, squares seed 1)",
                   fontsize=10)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(reversed(list(zip(labels, handles))))  # one entry per setting (its first point), not per point
    order = sorted(unique, key=settings.index)
    axes.legend([unique[label] for label in order], order, fontsize=8, loc="upper left")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", nargs="+", type=Path,
                        default=sorted((REPO / "docs").glob("titok_small_run_conv*/titok_small_run.json")),
                        help="titok_small_run.json files (default: the committed conv-decoder reports)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "titok_small_run_gan_template.png")
    args = parser.parse_args(argv)
    points = template_points(args.reports)
    if not points:
        raise SystemExit("None of the reports has the template measure (template_fraction); run "
                         "examples/titok_small_run.py with the current script first.")
    plot(points, args.output)
    for setting, name, sigma, ratio in points:
        print(f"{setting:28s} {name:12s} sigma {sigma:.2f} px  template {ratio:5.2f} x")
    print(f"Wrote {args.output}")
    return points


if __name__ == "__main__":
    main()
