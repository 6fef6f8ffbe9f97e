"""The benchmark suite: the README's performance block is what RESULTS.md generates, and
``run_all.py --quick`` (the CI smoke run, official checkouts absent) writes a RESULTS-format
report into a temporary directory without touching the committed one."""

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_blocks_are_generated_from_results():
    readme_table = load("readme_table")
    block = readme_table.readme_block((BENCHMARKS / "RESULTS.md").read_text())
    readme = (ROOT / "README.md").read_text()
    assert readme_table.updated_readme(readme) == readme, "run python benchmarks/readme_table.py --write"
    assert "mode: full" in block  # the committed results are a full run, not the smoke run
    gpu_block = readme_table.gpu_readme_block((BENCHMARKS / "RESULTS_GPU.md").read_text())
    assert gpu_block in readme and "--quick" not in gpu_block  # GPU figures, not a CPU smoke test


def test_gpu_report_summary_is_the_tables_ratios(tmp_path):
    """gpu.py's report from a hand-made results file: the summary's ratio is the peer's median over ours, the README
    block carries it, and --merge refuses to join figures of two different devices."""
    gpu = load("gpu")
    timing = {"min": 0.1, "max": 0.3, "runs": 3}
    results = {"quick": False, "machine": {"date": "d", "gpu": "GPU A", "torch": "t", "cuda": "c", "python": "p"},
               "generate": [{"size": {"tokens": 256, "batch": 8, "hidden": 768, "layers": 12}, "results": {
                   "hf_vq": {"median": 0.2, **timing, "tokens_per_s": 10240.0},
                   "official": {"median": 0.3, **timing, "tokens_per_s": 6826.7}}}]}
    text = gpu.report(results)
    assert "| KV-cached generation, GPT-B, batch 8 | 10240 tokens/s | LlamaGen generate: 6827 tokens/s | 1.50x |" in text
    assert "1.50x" in load("readme_table").gpu_readme_block(text)
    (tmp_path / "a.json").write_text(__import__("json").dumps(results))
    other = dict(results, machine=dict(results["machine"], gpu="GPU B"))
    (tmp_path / "b.json").write_text(__import__("json").dumps(other))
    with pytest.raises(SystemExit, match="only figures of the same device"):
        gpu.merge([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "out")


def test_plot_bars_are_the_peer_over_hf_vq_ratios_without_the_reference_rows():
    """A hand-written report with each kind of table: the plot gets every peer ratio once, labelled by case and
    peer, and none of the 1.00x reference rows, nor a ratio that is not a peer's time (hf_vq / floor)."""
    text = "\n".join([
        "## Other quantizers (16,384 vectors)", "",
        "| quantizer | mode | hf_vq | vqp | vqp / hf_vq | hf_vq / floor |", "|---|---|---|---|---|---|",
        "| FSQ [8, 5] | forward | 1 s | 2 s | 2.00x | 3.0x |", "",
        "## Data pipeline (256 JPEGs)", "",
        "| loader | seconds per pass | peer / hf_vq |", "|---|---|---|",
        "| hf_vq (`hf-vq train`'s loader) | 1 s | 1.00x |", "| plain PIL loop | 0.5 s | 0.50x |",
        "| JPEG decode alone (limit) | 0.2 s | - |", "",
        "## GPT training step (tiny)", "",
        "| step | seconds | vs plain hf_vq |", "|---|---|---|",
        "| hf_vq plain | 1 s | 1.00x |", "| official (train_c2i step) | 1.2 s | 1.20x |", "| hf_vq engine | 1 s | 1.00x |",
        "",
        "## FID feature extraction (16 images)", "",
        "| extractor | seconds | torch-fidelity / this |", "|---|---|---|",
        "| hf_vq, port | 1 s | 1.10x |", "| torch-fidelity package | 1.1 s | 1.00x |", ""])
    assert load("run_all").ratio_bars(text) == [
        ("Other quantizers: FSQ [8, 5] forward, vqp", 2.0),
        ("Data pipeline: plain PIL loop", 0.5),
        ("GPT training step: official (train_c2i step)", 1.2),
        ("FID feature extraction: torch-fidelity vs hf_vq, port", 1.1),
    ]


def test_readme_block_follows_the_results_and_refuses_a_missing_block():
    readme_table = load("readme_table")
    results = (BENCHMARKS / "RESULTS.md").read_text()
    changed = results.replace("<!-- summary:start -->\n", "<!-- summary:start -->\n| a new row | 1 s |\n")
    assert "| a new row | 1 s |" in readme_table.readme_block(changed)
    with pytest.raises(ValueError, match="summary:start"):
        readme_table.readme_block(results.replace("<!-- summary:start -->", ""))
    with pytest.raises(ValueError, match="performance:start"):
        readme_table.replace_block("no block here", "x")


def test_quick_run_writes_a_results_report(tmp_path):
    committed = hashlib.sha256((BENCHMARKS / "RESULTS.md").read_bytes()).hexdigest()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", HF_VQ_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--output-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "RESULTS.md").read_text()
    for heading in ("## Machine", "## Nearest-code search", "## Other quantizers", "## Tokenizers",
                    "## Tokenizer training step", "## GPT training step", "## AR generation", "## Data pipeline",
                    "## FID feature extraction", "## Import time", "## Not measured here", "## Summary"):
        assert heading in text
    assert "mode: quick" in text and "GPU figures were not measured" in text
    machine = text.split("## Machine", 1)[1].splitlines()
    assert machine[4].startswith("- Load average (1, 5, 15 min) at the start:") and "at the end:" in machine[4]
    assert machine[5].startswith("- float32 matmul")  # the load line keeps its place, after the versions
    assert text.count("official code not given") >= 3 + 1 + 1 + 1  # each tokenizer op, vq_train, train_c2i, generate
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ")}
    # the engine's tokenizer step was timed, with its generator / discriminator parts and its FLOP floor
    assert " s (" in rows["hf_vq engine (`hf-vq train`)"][0] and rows["hf_vq engine (`hf-vq train`)"][-1].endswith("x")
    for loader in ("hf_vq (`hf-vq train`'s loader)", "plain PIL loop", "datasets + torchvision.transforms.v2",
                   "JPEG decode + PIL crop, BICUBIC resize, flip (limit for these pixels)", "JPEG decode alone (limit)"):
        assert float(rows[loader][1]) > 0  # images/s
    # the sizes the text gives are those of the JPEGs the case reads (--quick: 16 made with seed 1)
    from PIL import Image

    jpegs = load("bench_images").write_jpeg_folder(tmp_path / "jpegs", count=16, seed=1)
    sizes = [Image.open(path).size for path in (jpegs / "photos").glob("*.jpg")]
    assert all(width == height for width, height in sizes)
    assert f"here {min(sizes)[0]}-{max(sizes)[0]} px squares" in text
    for extractor in ("hf_vq, pytorch-fid port (`load_fid_inception`)", "torch-fidelity package"):
        assert " s (" in rows[extractor][0]
    # our FID Inception computes torch-fidelity's features (same random weights, inputs matched at 299 px)
    same = re.search(r"torch-fidelity's network differ by at most ([0-9.e+-]+)", text)
    assert same and float(same.group(1)) < 1e-4
    # every hf_vq search row timed and its indices checked against float64 (0 not nearest)
    search_rows = [line for line in text.splitlines() if line.startswith("| 2,048 x") or line.startswith("| 1,024 x")]
    assert len(search_rows) == 4 and all(" s (" in row.split("|")[3] for row in search_rows)
    assert [row.split("|")[-2].strip() for row in search_rows if "| forward |" in row] == ["0", "0"]
    # the opt-in fused search beside the default, timed interleaved (CI has gcc; without a compiler the rows say so)
    fused_rows = [line for line in text.splitlines() if line.startswith("| hf_vq fused (opt-in) |")]
    assert len(fused_rows) == 2
    if shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc"):
        assert all(row.split("|")[4].strip().endswith("x") for row in fused_rows)
        assert all(row.split("|")[-2].strip() == "0" for row in fused_rows)  # the tiled search's indices
        assert text.count("forward, hf_vq fused (opt-in) | hf_vq fused ") == 2  # its summary rows
    else:
        assert all("not measured: The fused CPU search kernel needs a C compiler" in row for row in fused_rows)
    assert (tmp_path / "results.png").stat().st_size > 1000
    load("readme_table").readme_block(text)  # the README block can be generated from it
    assert hashlib.sha256((BENCHMARKS / "RESULTS.md").read_bytes()).hexdigest() == committed


def test_gpu_ran_compiled_tells_compiled_from_eager_calls():
    """A compiled row is only a compiled figure if the timed call ran a compiled graph: the check sees a compiled
    function, not the same function eager, and not a compiled one whose work dynamo left eager."""
    import torch

    gpu = load("gpu")

    def double_sin(x):
        return (x * 2).sin()

    x = torch.randn(8)
    compiled = torch.compile(double_sin)  # inductor, as gpu.py compiles
    compiled(x)
    assert gpu.ran_compiled(lambda: compiled(x))
    assert not gpu.ran_compiled(lambda: double_sin(x))
    eager_double_sin = torch.compiler.disable(double_sin)

    def calls_eager_code(x):
        return eager_double_sin(x)

    skipped = torch.compile(calls_eager_code)
    assert not gpu.ran_compiled(lambda: skipped(x))
    torch._dynamo.reset()


def test_gpu_report_marks_compiled_rows_that_ran_eager():
    gpu = load("gpu")
    timing = {"median": 0.1, "min": 0.1, "max": 0.1, "runs": 3}
    side = {**timing, "images_per_s": 80.0, "utilisation": 0.1, "extra_peak_mb": 1.0, "compile_seconds": 20.0}
    row = {"tokenizer": "llamagen", "batch": 8, "precision": "bf16", "op": "encode", "compiled": True,
           "same_indices": 1.0, "flops": 1.0,
           "results": {"hf_vq": {**side, "ran_compiled": False}, "official": {**side, "ran_compiled": True}}}
    text = gpu.report({"quick": False, "machine": {"date": "d", "gpu": "G", "torch": "t", "cuda": "c", "python": "p"},
                       "compile": [row]})
    line = next(line for line in text.splitlines() if line.startswith("| llamagen | 8 |"))
    assert line.endswith("| 20 (ran eager) / 20 |")
    assert "llamagen encode, batch 8, bf16, torch.compile (a side ran eager)" in gpu.summary({"compile": [row]})[2]


def test_fused_search_rows_say_why_when_no_compiler_works(monkeypatch, tmp_path):
    from hf_vq.quantizers import fused_search

    monkeypatch.setattr(fused_search, "_loaded", {})
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("PATH", str(tmp_path))
    got = load("search_kernels").time_interleaved(40, 70, 8, runs=1, matmul_size=64)
    assert "needs a C compiler" in got["fused"]["error"] and got["tiled"]["seconds"] > 0
    lines, summary = load("run_all").search_kernel_section(lambda kind, params, n: {"interleaved": got}, [(40, 70)], 8,
                                                           quick=True)
    fused_row = next(line for line in lines if line.startswith("| hf_vq fused (opt-in) | 40 x 70 |"))
    assert "not measured: The fused CPU search kernel needs a C compiler" in fused_row
    assert "forward, hf_vq fused (opt-in) | not measured: The fused CPU search kernel needs a C" in summary[40, 70]


def test_contention_script_times_each_search_in_its_own_interpreter():
    contention = load("contention")
    for kind in ("tiled", "tiled-torch-threads", "cdist"):
        result = contention.run_case(kind, (40, 70, 4), {"OMP_NUM_THREADS": "2"})
        assert result["threads"] == 2 and 0 < result["best"] < 30, (kind, result)
    assert "error" in contention.run_case("no-such-kind", (40, 70, 4), {})  # a failing case is reported, not hidden
