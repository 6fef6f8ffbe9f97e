"""The layers of ARCHITECTURE.md (and README "Architecture"): a lower layer never imports a higher one.

Every ``import`` of every module under src/hf_vq is read with ``ast`` (also the ones inside
functions: a lazy import is still a dependency), resolved to the hf_vq package it names and
checked against the layer order below.
"""

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "hf_vq"

# Lowest first; a module may import its own layer and the layers before it.
# processing sits next to modules: the image processor is part of a model's definition
# (transformers keeps it in the model folder), and models register it with AutoImageProcessor.
LAYERS = [
    {"utils"},
    {"quantizers"},
    {"modules", "processing"},
    {"models"},
    {"data", "losses", "evaluation"},
    {"training", "generation", "pipelines", "convert", "hub", "demo"},
    {"cli"},
]
# Same-or-lower-layer imports that are still forbidden.
FORBIDDEN = {("generation", "evaluation"), ("evaluation", "training")}
LAYER_OF = {package: index for index, packages in enumerate(LAYERS) for package in packages}


def package_of(module: str) -> str | None:
    """'hf_vq.models.base' -> 'models'; 'hf_vq' -> '' (the package root); other libraries -> None."""
    parts = module.split(".")
    if parts[0] != "hf_vq":
        return None
    return parts[1] if len(parts) > 1 else ""


def imported_modules(tree: ast.AST, module: str, is_package: bool):
    """Absolute names of everything ``module`` imports (relative imports resolved)."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                # ``from hf_vq import models`` imports the package hf_vq.models; ``from hf_vq import VQVAEModel``
                # imports the package root.
                submodule = SOURCE.parent / Path(*f"{target}.{alias.name}".split("."))
                is_module = submodule.is_dir() or submodule.with_suffix(".py").is_file()
                yield node.lineno, f"{target}.{alias.name}" if is_module else target


def layer_violations(source: str, module: str, is_package: bool = False) -> list:
    own = package_of(module)
    problems = []
    for line, target in imported_modules(ast.parse(source), module, is_package):
        imported = package_of(target)
        if imported is None or imported == own:
            continue
        where = f"{module}:{line} imports {target}"
        if own == "":
            if imported == "cli":
                problems.append(f"{where}: the package root never imports the CLI")
            continue
        if imported == "":
            problems.append(f"{where}: nothing inside hf_vq imports the package root (no import for a side effect)")
        elif imported not in LAYER_OF:
            problems.append(f"{where}: hf_vq.{imported} is in no layer; add it to LAYERS and the README")
        elif LAYER_OF[imported] > LAYER_OF[own]:
            problems.append(f"{where}: layer {LAYER_OF[own]} ({own}) imports layer {LAYER_OF[imported]} ({imported})")
        elif (own, imported) in FORBIDDEN:
            problems.append(f"{where}: {own} must not import {imported}")
    return problems


def module_name(path: Path) -> tuple[str, bool]:
    relative = path.relative_to(SOURCE.parent).with_suffix("")
    parts = list(relative.parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def test_no_lower_layer_imports_a_higher_one():
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        module, is_package = module_name(path)
        if package_of(module) not in LAYER_OF and package_of(module) != "":
            problems.append(f"{module}: hf_vq.{package_of(module)} is in no layer")
            continue
        problems += layer_violations(path.read_text(), module, is_package)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from ..evaluation.fid import frechet_distance", "hf_vq.generation.gfid", "generation must not import evaluation"),
        ("def f():\n    from ..hub import push_to_hub", "hf_vq.models.base", "layer 3 (models) imports layer 5 (hub)"),
        ("import hf_vq", "hf_vq.hub", "package root"),
        ("from hf_vq.training import train", "hf_vq.quantizers.fsq", "layer 1 (quantizers) imports layer 5"),
        ("from .. import cli", "hf_vq.data.sources", "layer 4 (data) imports layer 6 (cli)"),
    ],
)
def test_the_check_catches_each_kind_of_violation(source, module, expected):
    problems = layer_violations(source, module)
    assert problems and expected in problems[0]


def test_allowed_imports_pass():
    assert layer_violations("from ..quantizers import VectorQuantizer\nimport torch", "hf_vq.models.base") == []
    assert layer_violations("from .models import VQVAEModel", "hf_vq", is_package=True) == []


def test_readme_lists_the_layer_order():
    readme = (SOURCE.parents[1] / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    positions = [min(section.index(f"`{package}/`") for package in packages if f"`{package}/`" in section)
                 for packages in LAYERS if packages != {"hub"}]
    assert positions == sorted(positions)
    for packages in LAYERS:
        for package in packages:
            assert f"`{package}/`" in section or f"`{package}.py`" in section, package


def test_import_hf_vq_is_light_and_still_registers_the_auto_classes(tmp_path):
    """``import hf_vq`` loads no torch/diffusers/datasets/evaluation; the Auto classes still find every model."""
    import json
    import os
    import subprocess
    import sys

    probe = f"""
import sys, json
import hf_vq
light = sorted(name for name in ("torch", "transformers", "diffusers", "datasets", "hf_vq.evaluation") if name in sys.modules)
hf_vq.register_auto_classes()  # idempotent
from transformers import AutoConfig, AutoImageProcessor, AutoModel
config = hf_vq.VQVAEConfig(hidden_dim=8, codebook_size=8, codebook_dim=4, image_size=8)
model = AutoModel.from_config(config)
model.save_pretrained({str(tmp_path)!r})
hf_vq.VQImageProcessor(size=8).save_pretrained({str(tmp_path)!r})
loaded = AutoModel.from_pretrained({str(tmp_path)!r})
processor = AutoImageProcessor.from_pretrained({str(tmp_path)!r})
gpt = AutoModel.from_config(AutoConfig.for_model("llamagen_gpt", hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                                 vocab_size=8, block_size=4, multiple_of=8))
print(json.dumps([light, type(model).__name__, type(loaded).__name__, type(processor).__name__, type(gpt).__name__,
                  "diffusers" in sys.modules, "datasets" in sys.modules]))
"""
    env = {**os.environ, "PYTHONPATH": f"{SOURCE.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    light, model, loaded, processor, gpt, diffusers, datasets = json.loads(result.stdout.strip().splitlines()[-1])
    assert light == []
    assert (model, loaded, processor, gpt) == ("VQVAEModel", "VQVAEModel", "VQImageProcessor", "LlamaGenGPTModel")
    assert not diffusers and not datasets
