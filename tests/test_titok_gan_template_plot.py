"""examples/titok_gan_template_plot.py: the points it plots are the reports' own ratios, runs without the template
measure are left out, and a clear error when none has it."""

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("titok_gan_template_plot", REPO / "examples" / "titok_gan_template_plot.py")
template_plot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(template_plot)


def write_report(path: Path, gan, metrics: dict) -> Path:
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"gan": gan, "metrics": metrics}))
    return path


def test_plot_points_are_each_runs_template_ratio_and_sharpness(tmp_path):
    l2 = write_report(tmp_path / "l2" / "titok_small_run.json", None, {
        "conv, seed 0": {"template_fraction": 0.03, "equally_smooth_template_fraction": 0.01, "equally_smooth_sigma": 1.8},
        "conv, seed 1": {"template_fraction": 0.02, "equally_smooth_template_fraction": 0.016, "equally_smooth_sigma": 1.5}})
    gan = write_report(tmp_path / "gan" / "titok_small_run.json",
                       {"weight": 0.01, "start": 5000, "adaptive": False, "augment": True},
                       {"conv, seed 0": {"template_fraction": 0.12, "equally_smooth_template_fraction": 0.008,
                                         "equally_smooth_sigma": 1.05}})
    old = write_report(tmp_path / "old" / "titok_small_run.json", {"weight": 0.1, "start": 1000},
                       {"conv, seed 0": {"psnr": 15.0, "equally_smooth_sigma": 0.8}})  # before the template measure
    adaptive = write_report(tmp_path / "adaptive" / "titok_small_run.json",
                            {"weight": 0.1, "start": 5000, "adaptive": True},
                            {"conv, seed 1": {"template_fraction": 0.01, "equally_smooth_template_fraction": 0.01,
                                              "equally_smooth_sigma": 1.5}})
    one_stage = write_report(tmp_path / "one_stage" / "titok_small_run.json",
                             {"weight": 0.01, "start": 5000, "adaptive": False, "augment": False, "stages": 1},
                             {"conv, seed 1": {"template_fraction": 0.05, "equally_smooth_template_fraction": 0.02,
                                               "equally_smooth_sigma": 0.9}})
    output = tmp_path / "plot.png"
    points = template_plot.main(["--reports", str(l2), str(gan), str(old), str(adaptive), str(one_stage),
                                 "--output", str(output)])
    assert [(setting, name) for setting, name, _, _ in points] == [
        ("L2", "conv, seed 0"), ("L2", "conv, seed 1"), ("GAN 0.01 + DiffAugment", "conv, seed 0"),
        ("GAN 0.1 adaptive", "conv, seed 1"), ("GAN 0.01, 1-stage discriminator", "conv, seed 1")]
    assert [sigma for _, _, sigma, _ in points] == [1.8, 1.5, 1.05, 1.5, 0.9]
    assert [round(ratio, 6) for *_, ratio in points] == [3.0, 1.25, 15.0, 1.0, 2.5]  # 0.03 / 0.01, 0.02 / 0.016, ...
    with Image.open(output) as image:
        assert image.width > 300 and image.height > 200


def test_reports_without_the_template_measure_are_refused_clearly(tmp_path):
    old = write_report(tmp_path / "old" / "titok_small_run.json", None,
                       {"conv, seed 0": {"psnr": 15.0, "equally_smooth_sigma": 0.8}})
    with pytest.raises(SystemExit, match="template measure"):
        template_plot.main(["--reports", str(old), "--output", str(tmp_path / "plot.png")])
    assert not (tmp_path / "plot.png").exists()
