"""Every hf-vq command: a user error is one line, ``hf-vq: error: ...``, and exit status 2; --debug shows the traceback.

Also: ``hf-vq --help`` and every subcommand's ``--help`` import no torch (checked in a subprocess
through sys.modules, not timed).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hf_vq
from hf_vq.cli.main import COMMAND_MODULES, main

SRC = Path(__file__).resolve().parents[1] / "src"


def error_lines(capsys) -> list:
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("hf-vq")]


def saved_tokenizer(path):
    model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16))
    model.save_pretrained(path)
    return path


@pytest.mark.parametrize("source", ["taming", "llamagen"])
def test_convert_with_a_missing_file(tmp_path, capsys, source):
    assert main(["convert", source, str(tmp_path / "missing.ckpt"), str(tmp_path / "out")]) == 2
    (line,) = error_lines(capsys)
    assert line.startswith("hf-vq: error:") and "missing.ckpt" in line and "does not exist" in line
    with pytest.raises(ValueError, match="does not exist"):
        main(["convert", source, str(tmp_path / "missing.ckpt"), str(tmp_path / "out"), "--debug"])


def test_convert_gpt_with_a_missing_file(tmp_path, capsys):
    assert main(["convert", "llamagen-gpt", str(tmp_path / "c2i.pt"), str(tmp_path / "out"), "--preset", "GPT-B"]) == 2
    (line,) = error_lines(capsys)
    assert "c2i.pt" in line and "does not exist" in line


def test_evaluate_with_a_missing_model_dir(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "no-such-model")]) == 2
    (line,) = error_lines(capsys)
    assert "Model folder" in line and "no-such-model" in line and "does not exist" in line


def test_evaluate_with_a_folder_that_is_not_a_model(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no config.json" in error_lines(capsys)[0]


def test_evaluate_on_a_gpt_folder(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llamagen_gpt"}))
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "holds a GPT" in error_lines(capsys)[0]


@pytest.mark.parametrize("data", ["./missing-images", "images/of/mine", "/no/such/folder/"])
def test_evaluate_with_a_missing_data_folder(tmp_path, capsys, data):
    model_dir = saved_tokenizer(tmp_path / "model")
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--data", data]) == 2
    (line,) = error_lines(capsys)
    assert f"--data folder {data} does not exist" in line


def test_evaluate_with_zero_images(tmp_path, capsys):
    model_dir = saved_tokenizer(tmp_path / "model")
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--max-images", "0"]) == 2
    assert "--max-images must be at least 1" in error_lines(capsys)[0]


def test_push_with_a_missing_model_dir(tmp_path, capsys):
    assert main(["push", str(tmp_path / "nothing"), "someone/x", "--dry-run"]) == 2
    assert "does not exist" in error_lines(capsys)[0]


def test_benchmark_with_a_missing_run(tmp_path, capsys):
    assert main(["benchmark", str(tmp_path / "run-a")]) == 2
    assert "does not exist" in error_lines(capsys)[0]


def test_a_bad_option_is_exit_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "model", "--metrics", "accuracy"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bugs_keep_their_traceback(tmp_path, monkeypatch):
    """Only user errors become one line: anything else (a bug) propagates."""
    import hf_vq.cli.benchmark as benchmark_cli

    monkeypatch.setattr(benchmark_cli, "run", lambda args: [][1])
    parser_args = ["benchmark", str(tmp_path)]
    with pytest.raises(IndexError):
        main(parser_args)


def test_the_cli_metric_names_are_the_evaluators():
    from hf_vq.cli.evaluate import AVAILABLE_METRICS
    from hf_vq.evaluation import AVAILABLE_METRICS as EVALUATION_METRICS

    assert tuple(AVAILABLE_METRICS) == tuple(EVALUATION_METRICS)


def test_the_cli_presets_are_the_converters():
    from hf_vq.cli import convert as convert_cli
    from hf_vq.convert.llamagen import LLAMAGEN_PRESETS, WEIGHTS_KEYS
    from hf_vq.convert.taming import TAMING_PRESETS

    assert set(convert_cli.TAMING_PRESET_NAMES) == set(TAMING_PRESETS)
    assert set(convert_cli.LLAMAGEN_PRESET_NAMES) == set(LLAMAGEN_PRESETS)
    assert tuple(convert_cli.LLAMAGEN_WEIGHTS) == tuple(WEIGHTS_KEYS)


def _modules_after(code: str) -> set:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_help_imports_no_torch():
    commands = [module.rsplit(".", 1)[1].replace("_", "-") for module in COMMAND_MODULES]
    calls = "\n".join(
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass"
        for args in [["--help"], *[[command, "--help"] for command in commands], ["convert", "taming", "--help"]]
    )
    code = "import contextlib, io\nfrom hf_vq.cli.main import main\nwith contextlib.redirect_stdout(io.StringIO()):\n"
    code += "\n".join("    " + line for line in calls.splitlines())
    loaded = _modules_after(code)
    heavy = sorted(name for name in ("torch", "transformers", "diffusers", "datasets", "numpy") if name in loaded)
    assert heavy == [], f"`hf-vq --help` imported {heavy}"
