"""Benchmark tables (format of the benchmark pages), the usage plot, model cards and the push step."""

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from PIL import Image

import hf_vq
from hf_vq.cli.main import main
from hf_vq.evaluation import metrics_markdown, render_benchmark
from hf_vq.hub import model_card_template_path, prepare_push_folder, push_to_hub

# Two rows of the ImageNet-64 benchmark page (VQ 64/512 and VQ 8/16384).
PAGE_METRICS = {"codebook_usage": 0.9609375, "psnr": 26.889, "ssim": 0.86464, "lpips": 0.10172, "rfid": 39.28251}


def test_metrics_row_formats_like_the_benchmark_pages():
    table = metrics_markdown(PAGE_METRICS)
    assert table.splitlines()[0] == "| Codebook usage↑ | PSNR↑ | SSIM↑ | LPIPS↓ | rFID↓ |"
    assert table.splitlines()[2] == "| 96.09% | 26.8890 | 0.8646 | 0.1017 | 39.2825 |"
    partial = metrics_markdown({"codebook_usage": 1.0, "psnr": 27.70614})
    assert partial.splitlines()[2] == "| 100.00% | 27.7061 | - | - | - |"


def _saved_run(path, seed, codebook_size, metrics=None, steps=None):
    torch.manual_seed(seed)
    model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=codebook_size, codebook_dim=8, image_size=16))
    model.save_pretrained(path)
    if metrics is not None:
        (path / "metrics.json").write_text(json.dumps(metrics))
    if steps is not None:
        config = {"data": {"dataset": "embedded", "image_size": 16}, "training": {"max_steps": steps, "batch_size": 8}}
        (path / "train_config.json").write_text(json.dumps(config))
    return path


def test_benchmark_table_and_plot_of_several_runs(tmp_path, capsys):
    first = _saved_run(tmp_path / "vq-512", 0, 32, {**PAGE_METRICS, "eval_data": "embedded validation split"}, steps=500)
    second = _saved_run(tmp_path / "vq-16k", 1, 64, {"codebook_usage": 0.2455, "psnr": 28.5044}, steps=None)
    # evaluate's output wins over the training metrics.
    (second / "eval_metrics.json").write_text(json.dumps({"codebook_usage": 0.5, "psnr": 20.0, "ssim": 0.5}))
    table_path, plot_path = tmp_path / "table.md", tmp_path / "usage.png"
    assert main(["benchmark", str(first), str(second), "--output", str(table_path), "--plot", str(plot_path)]) == 0
    lines = table_path.read_text().splitlines()
    assert lines[0] == (
        "| Run | Model | Codebook dim. | Codebook size | l2 norm | Steps "
        "| Codebook usage↑ | PSNR↑ | SSIM↑ | LPIPS↓ | rFID↓ |"
    )
    assert lines[2] == "| vq-512 | vqvae | 8 | 32 | False | 500 | 96.09% | 26.8890 | 0.8646 | 0.1017 | 39.2825 |"
    assert lines[3] == "| vq-16k | vqvae | 8 | 64 | False | - | 50.00% | 20.0000 | 0.5000 | - | - |"
    assert "Evaluation data: embedded validation split" in table_path.read_text()
    assert lines[2] in capsys.readouterr().out
    with Image.open(plot_path) as plot:
        assert plot.format == "PNG" and plot.size[0] > 100


def test_benchmark_says_how_to_get_missing_metrics(tmp_path):
    run = _saved_run(tmp_path / "untrained", 0, 32)
    with pytest.raises(FileNotFoundError, match="hf-vq evaluate"):
        render_benchmark([run])


def test_model_card_template_is_packaged():
    path = model_card_template_path()
    assert path.is_file() and "hf_vq" in str(path.parent.parent)
    assert "{{ card_data }}" in path.read_text()


def test_prepare_push_folder_writes_card_and_processor(tmp_path):
    run = _saved_run(tmp_path / "run", 0, 32, {**PAGE_METRICS, "perplexity": 24.5, "eval_data": "embedded validation split, 16px",
                                                "rfid_reference": {"description": "embedded originals", "num_images": 256}},
                     steps=500)
    (run / "checkpoint-100").mkdir()
    (run / "checkpoint-100" / "optimizer.pt").write_bytes(b"x")
    files = prepare_push_folder(run, "someone/tiny-vq")
    assert files == sorted(["README.md", "config.json", "metrics.json", "model.safetensors",
                            "preprocessor_config.json", "train_config.json"])
    card = (run / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: hf_vq" in card
    assert "`VQVAEModel` (`model_type: vqvae`)" in card
    assert "downsampling factor 4 -> 4x4 tokens" in card
    assert "| `codebook_size` | 32 |" in card and "| `hidden_dim` | 16 |" in card
    assert "- Steps: 500" in card and "embedded at 16px" in card
    assert "| 96.09% | 26.8890 | 0.8646 | 0.1017 | 39.2825 |" in card
    assert "embedded originals (256 images)" in card
    assert 'AutoModel.from_pretrained("someone/tiny-vq")' in card
    processor = hf_vq.VQImageProcessor.from_pretrained(run)
    assert processor.size == 16


def test_push_uploads_the_prepared_folder(tmp_path):
    run = _saved_run(tmp_path / "run", 0, 32, {"codebook_usage": 0.5, "psnr": 20.0})
    with mock.patch("huggingface_hub.HfApi") as api_class:
        api_class.return_value.create_repo.return_value.repo_id = "someone/tiny-vq"
        push_to_hub(run, "someone/tiny-vq", private=True)
    api = api_class.return_value
    api.create_repo.assert_called_once_with("someone/tiny-vq", private=True, exist_ok=True)
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "someone/tiny-vq" and kwargs["folder_path"] == str(run)
    assert set(kwargs["allow_patterns"]) == {"README.md", "config.json", "metrics.json", "model.safetensors",
                                             "preprocessor_config.json"}


def test_push_cli_dry_run_lists_files_without_uploading(tmp_path, capsys):
    run = _saved_run(tmp_path / "run", 0, 32)
    with mock.patch("huggingface_hub.HfApi") as api_class:
        assert main(["push", str(run), "someone/tiny-vq", "--dry-run"]) == 0
    api_class.assert_not_called()
    out = capsys.readouterr().out
    assert "Would upload to someone/tiny-vq:" in out and "README.md" in out
    assert "Not evaluated yet" in (run / "README.md").read_text()


def test_model_push_to_hub_uploads_model_processor_and_card():
    model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16))
    uploaded = {}

    def read_folder(**kwargs):  # the temporary folder is gone after the call: read it now
        folder = Path(kwargs["folder_path"])
        uploaded.update({path.name: path.read_bytes() for path in folder.iterdir()})
        uploaded["kwargs"] = kwargs

    with mock.patch("huggingface_hub.HfApi") as api_class:
        api_class.return_value.create_repo.return_value.repo_id = "someone/tiny-vq"
        api_class.return_value.upload_folder.side_effect = read_folder
        model.push_to_hub("someone/tiny-vq", metrics={"codebook_usage": 0.5, "psnr": 20.0}, create_pr=True,
                          revision="dev", commit_description="why", tags=["demo"])
    assert {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"} <= set(uploaded)
    card = uploaded["README.md"].decode()
    assert "vqvae" in card and "| 50.00% | 20.0000 |" in card and "- demo" in card
    assert json.loads(uploaded["preprocessor_config.json"])["size"] == 16
    kwargs = uploaded["kwargs"]
    assert (kwargs["create_pr"], kwargs["revision"], kwargs["commit_description"]) == (True, "dev", "why")
    with pytest.raises(TypeError, match="safe_serialization"):
        model.push_to_hub("someone/tiny-vq", safe_serialization=False)


def test_model_push_to_hub_keeps_every_transformers_argument():
    """hf_vq adds the image processor and the card to transformers' push_to_hub; it never narrows it."""
    import inspect

    from transformers import PreTrainedModel

    ours = inspect.signature(hf_vq.VQVAEModel.push_to_hub).parameters
    theirs = inspect.signature(PreTrainedModel.push_to_hub).parameters
    for name, parameter in theirs.items():
        assert name in ours, f"push_to_hub lost transformers' argument {name!r}"
        assert ours[name].default == parameter.default, name
    assert {"image_processor", "metrics", "model_card"} <= set(ours)


def test_model_push_to_hub_takes_a_card_passed_in():
    model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16))
    uploaded = {}
    with mock.patch("huggingface_hub.HfApi") as api_class:
        api_class.return_value.upload_folder.side_effect = lambda **kwargs: uploaded.update(
            card=(Path(kwargs["folder_path"]) / "README.md").read_text())
        model.push_to_hub("someone/tiny-vq", model_card="# My own card\n")
    assert uploaded["card"] == "# My own card\n"


def test_push_without_network_says_the_hub_cannot_be_reached(tmp_path, capsys):
    import httpx2

    run = _saved_run(tmp_path / "run", 0, 32)
    with mock.patch("huggingface_hub.HfApi") as api_class:
        api_class.return_value.create_repo.side_effect = httpx2.ConnectError("Name or service not known")
        assert main(["push", str(run), "someone/tiny-vq"]) == 2
    stderr = capsys.readouterr().err
    err = [line for line in stderr.splitlines() if line.startswith("hf-vq")]  # (transformers' progress bars aside)
    assert "Traceback" not in stderr
    assert len(err) == 1 and err[0].startswith("hf-vq: error: The Hugging Face Hub cannot be reached")
    assert "hf auth login" in err[0] and "--dry-run" in err[0]
