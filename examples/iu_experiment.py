"""The IU-tokenizer experiment end to end: tokenizers -> tokens -> class-conditional GPT -> samples -> one table.

    python examples/iu_experiment.py --quick                                   # embedded data, CPU (timing below)
    python examples/iu_experiment.py --quick --tokenizers vqgan,outputs/demo-vqvae
    python examples/iu_experiment.py --data ILSVRC/imagenet-1k --codebook codebooks/clip-l14-imagenet-100k.safetensors \
        --fid-reference imagenet-val-256.npz                                   # full scale (GPUs; days)
    python examples/iu_experiment.py --data ILSVRC/imagenet-1k --tokenizers vqkd_clip,cluster_clip \
        --teacher /models/clip-vit-base-patch16                                # offline: the teacher from a folder

For every tokenizer of ``--tokenizers`` (comma-separated; default ``vqgan,fsq,cvq,vqgan_lc,vqkd_clip,cluster_clip``):

1. **tokenizer**: a recipe name (``vqgan`` = ``configs/iu/vqgan_8192.yaml``, ``fsq`` = ``configs/iu/fsq_8000.yaml``,
   ``cvq`` = ``configs/iu/cvq_8192.yaml``, ``vqgan_lc`` = ``configs/imagenet256/vqgan-lc.yaml``; the semantic
   tokenizers ``vqkd_clip``, ``vqkd_dino``, ``cluster_clip`` = ``configs/iu/<name>.yaml`` then
   ``configs/iu/<name>-pixel-decoder.yaml``), any training YAML, or a saved model folder (loaded, not trained:
   e.g. a converted checkpoint). Training ends with the evaluation on held-out images: codebook usage, PSNR
   and rFID (``metrics.json``); a loaded model is evaluated the same way. VQGAN-LC needs its frozen codebook:
   ``--codebook FILE`` (``hf-vq build-codebook``).
   A semantic tokenizer (VQ-KD, Cluster) is trained in two stages: stage 1 (``<run>/stage1``) learns its codes
   from the frozen teacher its config names; stage 2 (``<run>/tokenizer``) trains a pixel decoder behind the
   frozen stage 1 (``model.stage1_from``), and that model is the tokenizer of the next steps. A stage-1 YAML of
   one's own is followed by the ``<name>-pixel-decoder.yaml`` next to it. ``--teacher PATH`` (every semantic
   tokenizer) or ``--teacher vqkd_clip=PATH`` (one) replaces the teacher the config names (a Hub id or a local
   folder). With ``--quick`` no hub is reachable: the example saves a *random* tiny CLIP in
   ``--output-dir/random-clip-stand-in`` and passes it explicitly as the teacher of VQ-KD and Cluster (unless
   ``--teacher`` is given) and to ``build_codebook`` for VQGAN-LC's codebook (unless ``--codebook`` is given).
   It only exercises the stages: those codes carry no semantics, and the table marks those rows "random
   stand-in teacher". The library itself never substitutes a teacher.
2. **tokens**: the dataset encoded with ``hf_vq.data.token_datasets.tokenize_dataset`` (``hf-vq tokenize``).
3. **GPT**: ``hf_vq.training.train_ar`` (``hf-vq train-ar``) with ``--ar-config`` (``configs/ar/gpt-b.yaml``;
   ``configs/ar/tiny.yaml`` with ``--quick``) on those tokens.
4. **samples**: ``generate_samples`` with the IU sampler (guidance 1.75, top-k 600, top-p 0.92, temperature 1),
   one per class in turn, then gFID against ``--fid-reference`` (default: statistics of the evaluation
   images, computed here) and the Inception Score.

Written to ``--output-dir`` (default ``outputs/iu_experiment``): one folder per tokenizer (``tokenizer/``,
``stage1/`` for the semantic ones, ``tokens/``, ``gpt/``, ``samples/``), ``iu_table.md`` (one row per tokenizer:
usage, PSNR, rFID, gFID, IS, steps), ``iu_results.json`` (also each row's wall time) and ``iu_plot.png``. rFID,
gFID and IS need the FID Inception weights (``pt_inception-2015-12-05-6726825d.pth`` in torch's hub cache, or
``--fid-weights``); without them the cells read "n/a (weights missing: PATH)". ``--quick`` shrinks every model
(16 px images, 8 x 8 tokens, a 2-level backbone or a 2-layer ViT, small codebooks, a tiny GPT, LPIPS off) and
trains a few hundred steps: a smoke-scale run whose numbers are not the paper's. Measured for the default
list (2026-11-23, ``OMP_NUM_THREADS=1``): 6 min 53 s wall (405 s of CPU) on an otherwise idle 2-core
machine, 56-83 s a row; at ``uptime`` load 4.6-8.3 (other jobs) it took 30.8 min wall. ``OMP_NUM_THREADS=2`` on
that loaded machine is far slower (about 11 s per VQGAN step against 1.1 s with one thread: the two threads
wait for each other); use one thread per process on a busy machine.
The paper (arXiv 2411.04406) reports gFID 15.78 for VQGAN and 4.10 for VQ-KD (CLIP) with a 24-layer GPT;
VQGAN-LC reports 99.9% usage of 100,000 codes.
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
IU = REPO / "configs" / "iu"
# A recipe is its training YAMLs in order: one, or two for the semantic tokenizers (stage 1 learns the codes from
# a frozen teacher, stage 2 trains a pixel decoder behind them: model.stage1_from = stage 1's output).
RECIPES = {
    "vqgan": [IU / "vqgan_8192.yaml"],
    "fsq": [IU / "fsq_8000.yaml"],
    "cvq": [IU / "cvq_8192.yaml"],
    "vqgan_lc": [REPO / "configs" / "imagenet256" / "vqgan-lc.yaml"],
    "vqkd_clip": [IU / "vqkd-clip.yaml", IU / "vqkd-clip-pixel-decoder.yaml"],
    "vqkd_dino": [IU / "vqkd-dino.yaml", IU / "vqkd-dino-pixel-decoder.yaml"],
    "cluster_clip": [IU / "cluster-clip.yaml", IU / "cluster-clip-pixel-decoder.yaml"],
}
DEFAULT_TOKENIZERS = "vqgan,fsq,cvq,vqgan_lc,vqkd_clip,cluster_clip"
# The config key naming the frozen teacher, per model type with one.
TEACHER_KEYS = {"vqkd": "teacher_name_or_path", "vq_cluster": "teacher"}
STAND_IN_TEACHER = "random-clip-stand-in"  # --quick without --teacher: a random tiny CLIP in this folder of --output-dir
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # tokenizing and sampling (training runs under Accelerate)
# The IU paper's sampler (REFERENCES: AR generation).
IU_SAMPLING = {"guidance_scale": 1.75, "top_k": 600, "top_p": 0.92, "temperature": 1.0}
# --quick: every model shrunk to a 2-level backbone at 16 px (8 x 8 = 64 tokens) with a small codebook.
QUICK_BACKBONE = {"image_size": 16, "base_channels": 32, "channel_multipliers": [1, 2], "z_channels": 32,
                  "num_res_blocks": 1, "attn_resolutions": [8]}
QUICK_CODEBOOK = {"vqgan": {"codebook_size": 512}, "vqgan_cvq": {"codebook_size": 512},
                  "vqgan_fsq": {"levels": [8, 5, 5, 5]}, "vqgan_lc": {}}
QUICK_LC_CODES_PER_CLASS = 16
# --quick steps, sized so that the whole default list runs in minutes on a CPU (timing in the module docstring).
QUICK_STEPS = 200  # tokenizer (and stage-2 pixel decoder) steps; the GAN starts halfway
QUICK_STAGE1_STEPS = 100  # semantic stage 1 (VQ-KD distillation, Cluster's online clustering): no decoder, no GAN
QUICK_GPT_STEPS = 150  # configs/ar/tiny.yaml's GPT (its own 400 steps were three quarters of a row's time)
# --quick VQ-KD: a 2-layer ViT (the codes' grid is the teacher's patch grid, its features the target).
QUICK_VQKD = {"encoder_hidden_size": 32, "encoder_num_layers": 2, "encoder_num_heads": 4, "decoder_hidden_size": 32,
              "decoder_num_layers": 1, "decoder_num_heads": 4, "codebook_size": 512, "codebook_dim": 8}
QUICK_CLUSTER = {"codebook_size": 512}
# The stand-in teacher: 16 px images in 2 px patches, so its grid is the 8 x 8 of the other --quick tokenizers.
QUICK_TEACHER_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                        "image_size": 16, "patch_size": 2}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizers", default=DEFAULT_TOKENIZERS,
                        help=f"Comma-separated: recipe names {sorted(RECIPES)}, training YAMLs or saved model folders.")
    parser.add_argument("--quick", action="store_true", help="Shrunk models, the embedded data, minutes on a CPU.")
    parser.add_argument("--data", default=None, help="embedded (default with --quick), an image folder, a save_to_disk "
                        "folder or a Hub dataset (ILSVRC/imagenet-1k).")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--eval-split", default="validation")
    parser.add_argument("--codebook", default=None, help="VQGAN-LC's frozen codebook (hf-vq build-codebook output).")
    parser.add_argument("--teacher", action="append", default=[], metavar="[TOKENIZER=]PATH",
                        help="The frozen teacher (a transformers checkpoint: Hub name or local folder) of the semantic "
                        "tokenizers (VQ-KD, Cluster) instead of the one their config names; TOKENIZER=PATH for one of "
                        "them only (e.g. --teacher vqkd_clip=/models/clip-vit-base-patch16). Repeatable.")
    parser.add_argument("--ar-config", default=None, help="GPT config (default configs/ar/gpt-b.yaml; --quick: tiny.yaml).")
    parser.add_argument("--tokenizer-steps", type=int, default=None, help="Override the tokenizer's max_steps.")
    parser.add_argument("--ar-steps", type=int, default=None, help="Override the GPT's max_steps.")
    parser.add_argument("--batch-size", type=int, default=None, help="Override the tokenizer's batch size.")
    parser.add_argument("--num-samples", type=int, default=None, help="Samples for gFID / IS (default 50,000; --quick 44).")
    parser.add_argument("--eval-images", type=int, default=None, help="Held-out images for rFID / usage / PSNR.")
    parser.add_argument("--max-images", type=int, default=None,
                        help="Tokenize (and, --quick, build the stand-in codebook from) only the first N training images.")
    parser.add_argument("--augment", default="none", help="hf-vq tokenize --augment (none, flip, ten_crop).")
    parser.add_argument("--fid-reference", default=None, help="gFID reference statistics (.npz); default: the eval images'.")
    parser.add_argument("--fid-weights", default=None, help="FID Inception weights (default: torch's hub cache).")
    parser.add_argument("--is-splits", type=int, default=None, help="Inception Score splits (default 10; --quick 1).")
    parser.add_argument("--output-dir", default="outputs/iu_experiment")
    args = parser.parse_args(argv)
    if args.data is None:
        if not args.quick:
            parser.error("--data is required without --quick (e.g. --data ILSVRC/imagenet-1k).")
        args.data = "embedded"
    args.teachers = {}  # tokenizer name (or None: all of them) -> teacher
    for value in args.teacher:
        name, separator, path = value.partition("=")
        if not separator or "/" in name or not name:
            name, path = None, value
        if not path:
            parser.error(f"--teacher {value!r} names no teacher: pass PATH or TOKENIZER=PATH.")
        args.teachers[name] = path
    return args


# -- data ---------------------------------------------------------------------------------------------

def data_section(data: str) -> dict:
    """The ``data:`` keys of a tokenizer config for ``--data``."""
    if data == "embedded":
        return {"dataset": "embedded"}
    if Path(data).is_dir() and not (Path(data) / "dataset_info.json").exists() and not (Path(data) / "dataset_dict.json").exists():
        return {"train_data_dir": data}
    return {"dataset": data}


_LOADED = {}  # (data, split, max_images) -> dataset: every stage reads the same images, loaded once


def load_images(data: str, split: str, max_images: int | None = None):
    """A datasets.Dataset with ``image`` and ``label`` columns (embedded, a folder, a saved dataset or the Hub)."""
    key = (data, split, max_images)
    if key not in _LOADED:
        if data == "embedded":
            from hf_vq.data import load_embedded_dataset

            dataset = load_embedded_dataset(split, num_patches=max_images)
        elif Path(data).is_dir():
            from hf_vq.cli.tokenize import load_image_dataset

            dataset = load_image_dataset(data, split)
        else:
            from datasets import load_dataset

            dataset = load_dataset(data, split=split)
        _LOADED[key] = dataset.select(range(min(max_images, len(dataset)))) if max_images else dataset
    return _LOADED[key]


# -- stage 1: the tokenizer ---------------------------------------------------------------------------

def resolve_tokenizer(spec: str):
    """(name, training YAMLs in order, model folder or None) for one entry of --tokenizers.

    A stage-1 YAML of a semantic tokenizer (VQ-KD, Cluster: its codes come from a teacher, it decodes no pixels)
    is followed by its stage-2 recipe when one lies next to it as ``<name>-pixel-decoder.yaml``.
    """
    if spec in RECIPES:
        return spec, list(RECIPES[spec]), None
    path = Path(spec)
    if path.is_dir() and (path / "config.json").is_file():
        return path.name, [], path
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        stage2 = path.with_name(f"{path.stem}-pixel-decoder{path.suffix}")
        model = yaml.safe_load(path.read_text()).get("model", {})
        if model.get("model_type") in TEACHER_KEYS and "stage1_from" not in model and stage2.is_file():
            return path.stem, [path, stage2], None
        return path.stem, [path], None
    raise ValueError(f"--tokenizers entry {spec!r} is not a recipe ({sorted(RECIPES)}), a training YAML or a saved "
                     "model folder (with config.json).")


def stand_in_teacher(output_dir: Path) -> Path:
    """A RANDOM tiny CLIP saved in ``output_dir/random-clip-stand-in`` (--quick only, labelled in the table).

    No hub is reachable in a smoke run: it stands in for the teachers of VQGAN-LC's codebook and of the
    semantic tokenizers, so that their stages run; its features, hence those codes, carry no semantics.
    """
    from transformers import CLIPConfig, CLIPModel

    folder = output_dir / STAND_IN_TEACHER
    torch.manual_seed(0)
    text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64,
                bos_token_id=0, eos_token_id=1, pad_token_id=1)
    # A full CLIPModel: it has visual_projection, which VQ-KD's "projected" features need.
    CLIPModel(CLIPConfig(vision_config=QUICK_TEACHER_VISION, text_config=text, projection_dim=24)).save_pretrained(folder)
    return folder


def teacher_for(name: str, args) -> str | None:
    """The teacher the user named for tokenizer ``name`` (--teacher NAME=PATH, else --teacher PATH), else
    the stand-in with --quick; None: the one the config names."""
    teacher = args.teachers.get(name, args.teachers.get(None))
    if teacher is None and args.quick:
        teacher = str((Path(args.output_dir) / STAND_IN_TEACHER).resolve())
    return teacher


def build_quick_codebook(run_dir: Path, args) -> Path:
    """A small VQGAN-LC codebook from the RANDOM stand-in CLIP (--quick without --codebook): exercises build-codebook only."""
    from hf_vq.data.teacher_codebook import build_codebook
    from hf_vq.modules.teachers import FrozenTeacher

    teacher = FrozenTeacher.from_pretrained(str(Path(args.output_dir) / STAND_IN_TEACHER))
    dataset = load_images(args.data, args.train_split, args.max_images)
    num_classes = len(set(dataset["label"]))
    output = run_dir / "codebook.safetensors"
    build_codebook(teacher, dataset, QUICK_LC_CODES_PER_CLASS * num_classes, output, pool=1, max_iters=10,
                   progress=False)
    return output


def quick_semantic_model(model: dict, teacher: str) -> None:
    """Shrink a stage-1 VQ-KD / Cluster ``model:`` section for --quick, sized to its teacher's patches and features."""
    from hf_vq.modules.teachers import FrozenTeacher

    size = QUICK_BACKBONE["image_size"]
    loaded = FrozenTeacher.from_pretrained(teacher, features=model.get("teacher_features"), image_size=size)
    model["image_size"] = size
    if model["model_type"] == "vqkd":
        model.update(QUICK_VQKD, patch_size=loaded.patch_size, teacher_feature_dim=loaded.feature_dim)
    else:
        model.update(QUICK_CLUSTER, teacher_patch_size=loaded.patch_size, codebook_dim=loaded.feature_dim)


def quick_pixel_decoder(stage1_dir: Path) -> dict:
    """The --quick pixel decoder: QUICK_BACKBONE's widths, as many levels as the stage-1 codes' downsampling needs."""
    saved = json.loads((stage1_dir / "config.json").read_text())
    factor = saved.get("patch_size") or saved["teacher_patch_size"]  # VQ-KD's / Cluster's downsampling
    return {"base_channels": QUICK_BACKBONE["base_channels"], "z_channels": QUICK_BACKBONE["z_channels"],
            "num_res_blocks": QUICK_BACKBONE["num_res_blocks"],
            "channel_multipliers": [1] + [2] * (int(factor).bit_length() - 1)}


def tokenizer_config(name: str, config_path: Path, run_dir: Path, args, *, output: str = "tokenizer",
                     stage1_dir: Path | None = None) -> dict:
    """The training config of one stage, shrunk for --quick and pointed at --data and ``run_dir / output``.

    ``stage1_dir``: the trained stage-1 model a stage-2 recipe (``model.stage1_from``) builds on.
    """
    raw = yaml.safe_load(config_path.read_text())
    raw["output_dir"] = str(run_dir / output)
    model, training, loss = raw["model"], raw.setdefault("training", {}), raw.setdefault("loss", {})
    stage1 = model.get("model_type") in TEACHER_KEYS and "stage1_from" not in model
    if "stage1_from" in model:
        if stage1_dir is None:
            raise ValueError(f"{config_path} is a stage-2 recipe (model.stage1_from): give its stage-1 YAML first "
                             f"(or a recipe name such as vqkd_clip), or pass the trained stage-2 model folder.")
        model["stage1_from"] = str(stage1_dir)
    if args.quick:  # a smoke run starts over; a full run keeps the recipe's checkpoints and `resume_from: latest`
        training.update({"resume_from": None, "checkpoint_every": 0, "log_images_every": 0, "overwrite": True})
    raw["data"] = {**{k: v for k, v in raw.get("data", {}).items() if k not in ("dataset", "train_data_dir")},
                   **data_section(args.data), "train_split": args.train_split, "eval_split": args.eval_split}
    teacher = teacher_for(name, args) if stage1 else None
    if teacher is not None:
        model[TEACHER_KEYS[model["model_type"]]] = teacher
    if model.get("model_type") == "vqgan_lc":
        codebook = args.codebook or (build_quick_codebook(run_dir, args) if args.quick else None)
        if codebook is None and not Path(model["codebook"]).is_file():
            raise FileNotFoundError(f"VQGAN-LC needs its frozen codebook ({model['codebook']} does not exist): pass "
                                    "--codebook FILE, made with hf-vq build-codebook.")
        if codebook is not None:
            from hf_vq.data.teacher_codebook import load_codebook

            shape = load_codebook(codebook).shape
            model.update(codebook=str(codebook), codebook_size=shape[0], codebook_feature_dim=shape[1])
    if args.quick:
        if stage1:
            quick_semantic_model(model, model[TEACHER_KEYS[model["model_type"]]])
        elif "stage1_from" in model:
            model["pixel_decoder"] = quick_pixel_decoder(stage1_dir)
        else:
            model.update(QUICK_BACKBONE)
            model.update(QUICK_CODEBOOK.get(model.get("model_type"), {}))
        raw["data"].update({"image_size": QUICK_BACKBONE["image_size"], "num_workers": 0, "max_eval_images": 64})
        training.update({"batch_size": 16, "max_steps": QUICK_STAGE1_STEPS if stage1 else QUICK_STEPS,
                         "learning_rate": 1e-3, "disc_learning_rate": 1e-3, "lr_scheduler": "constant",
                         "min_learning_rate": 0.0, "warmup_steps": 0, "log_every": 50, "mixed_precision": "no"})
        if not stage1:  # stage 1 of a semantic tokenizer has no pixels, hence no LPIPS or GAN to shrink
            # LPIPS needs downloaded VGG weights: off; the GAN stays, switched on halfway, with a small
            # discriminator (2 PatchGAN layers: 3 need images of at least 24 px).
            loss.update({"lpips_weight": 0.0, "disc_channels": 16, "disc_layers": 2, "disc_start": QUICK_STEPS // 2})
        raw["eval"] = {"batch_size": 64, "num_grid_images": 8}
    if args.tokenizer_steps is not None:
        training["max_steps"] = args.tokenizer_steps
        if loss.get("disc_weight", 0) > 0:
            loss["disc_start"] = min(loss.get("disc_start", 0), args.tokenizer_steps // 2)
    if args.batch_size is not None:
        training["batch_size"] = args.batch_size
    if args.eval_images is not None:
        raw["data"]["max_eval_images"] = args.eval_images
    return raw


def check_decodes_pixels(name: str, model: dict) -> None:
    """The GPT's samples are decoded to images: a stage-1 tokenizer that decodes teacher features (VQ-KD) cannot serve.

    ``model``: the saved config.json or the training YAML's ``model:`` section. A semantic tokenizer
    (``PixelDecoderMixin``: ``decodes_pixels`` is a property of the instance) decodes images once it has a
    pixel decoder: a config with ``pixel_decoder``, or a stage-2 recipe (``stage1_from``).
    """
    import importlib
    import inspect

    from hf_vq.models.auto import TOKENIZER_CLASSES

    model_type = model.get("model_type")
    if model_type not in TOKENIZER_CLASSES:
        return  # the training config's own checks name the problem
    module, _, model_class = TOKENIZER_CLASSES[model_type]
    declared = inspect.getattr_static(getattr(importlib.import_module(module), model_class), "decodes_pixels", True)
    if isinstance(declared, property):
        decodes = model.get("pixel_decoder") is not None or "stage1_from" in model
    else:
        decodes = bool(declared)
    if not decodes:
        raise ValueError(f"Tokenizer {name!r} ({model_type}) decodes teacher features, not images: train its pixel "
                         "decoder (stage 2) first and pass that model folder instead, or pass a recipe name "
                         "(vqkd_clip, cluster_clip) or a stage-1 YAML with its <name>-pixel-decoder.yaml next to it.")


def train_stage(config_raw: dict, extractor):
    """(output folder, its metrics) of one training run; a relaunched full run reuses a finished one."""
    finished = Path(config_raw["output_dir"])
    if not config_raw["training"].get("overwrite") and (finished / "model.safetensors").is_file() \
            and (finished / "metrics.json").is_file():
        print(f"reusing the trained model in {finished}")  # a relaunched full run skips finished stages
        return finished, json.loads((finished / "metrics.json").read_text())
    from hf_vq.training import TrainConfig, run_training

    result = run_training(TrainConfig.from_dict(config_raw), fid_feature_extractor=extractor)
    return result.output_dir, result.metrics


def train_or_load_tokenizer(name, config_paths, model_dir, run_dir: Path, args, extractor) -> tuple:
    """(tokenizer folder, its metrics: codebook_usage, psnr, rfid when the Inception is there, ..., the steps of
    each training stage, the stage-1 metrics or None)."""
    if model_dir is not None:
        check_decodes_pixels(name, json.loads((Path(model_dir) / "config.json").read_text()))
    else:
        check_decodes_pixels(name, yaml.safe_load(Path(config_paths[-1]).read_text())["model"])
    if model_dir is not None:
        from hf_vq.evaluation.model_evaluation import evaluate_model_dir

        metrics = ["usage", "psnr", "ssim"] + (["rfid"] if extractor is not None else [])
        result = evaluate_model_dir(model_dir, data=args.data, split=args.eval_split, metrics=metrics,
                                    output=run_dir / "tokenizer_eval_metrics.json", max_images=args.eval_images,
                                    fid_feature_extractor=extractor, progress=False)
        return Path(model_dir), result, "loaded", None
    steps, stage1_dir, stage1_metrics = [], None, None
    for index, config_path in enumerate(config_paths):
        last = index == len(config_paths) - 1
        if len(config_paths) > 1:
            print(f"[{name}] stage {index + 1}: {Path(config_path).name}")
        raw = tokenizer_config(name, Path(config_path), run_dir, args, output="tokenizer" if last else "stage1",
                               stage1_dir=stage1_dir)
        steps.append(raw["training"]["max_steps"])
        # Stage 1 of a semantic tokenizer decodes no images: no rFID.
        output_dir, metrics = train_stage(raw, extractor if last else None)
        if not last:
            stage1_dir, stage1_metrics = Path(output_dir), metrics
    return Path(output_dir), metrics, steps[0] if len(steps) == 1 else steps, stage1_metrics


# -- stages 2-4: tokens, GPT, samples -----------------------------------------------------------------

def tokenize(tokenizer_dir: Path, run_dir: Path, args) -> Path:
    from transformers import AutoModel

    from hf_vq.data.token_datasets import tokenize_dataset

    if not args.quick and (run_dir / "tokens" / "dataset_info.json").is_file():
        return run_dir / "tokens"
    tokenizer = AutoModel.from_pretrained(tokenizer_dir).to(DEVICE)
    tokens = tokenize_dataset(tokenizer, load_images(args.data, args.train_split, args.max_images), augment=args.augment, batch_size=64)
    tokens.save_to_disk(str(run_dir / "tokens"))  # written last: its dataset_info.json marks the stage done
    return run_dir / "tokens"


def train_gpt(tokenizer_dir: Path, tokens_dir: Path, run_dir: Path, args):
    from hf_vq.training import load_ar_config, train_ar

    path = args.ar_config or REPO / "configs" / "ar" / ("tiny.yaml" if args.quick else "gpt-b.yaml")
    overrides = ["--data.tokens", str(tokens_dir), "--data.tokenizer", str(tokenizer_dir), "--output_dir", str(run_dir / "gpt")]
    if args.quick:
        overrides += ["--training.resume_from", "null", "--training.overwrite", "true", "--training.checkpoint_every", "0"]
    elif (run_dir / "gpt" / "checkpoints" / "latest").exists():
        overrides += ["--training.resume_from", "latest"]  # relaunching a preempted full run continues it
    if args.ar_steps is not None:
        overrides += ["--training.max_steps", str(args.ar_steps), "--training.warmup_steps", "0"]
    elif args.quick and args.ar_config is None:
        overrides += ["--training.max_steps", str(QUICK_GPT_STEPS), "--training.warmup_steps", "10"]
    return train_ar(load_ar_config(path, overrides))


def reference_statistics(args, extractor, image_size: int, cache: dict):
    """gFID reference: --fid-reference, else the statistics of the evaluation images (center crop at image_size)."""
    from hf_vq.evaluation.fid import FIDStatistics, compute_fid_statistics

    if args.fid_reference:
        return FIDStatistics.load(args.fid_reference)
    if image_size not in cache:
        from hf_vq.data import EvalTransform

        dataset = load_images(args.data, args.eval_split, args.eval_images)
        transform = EvalTransform(image_size)
        images = [transform(image) for image in dataset["image"]]
        batches = (torch.stack(images[i : i + 64]) for i in range(0, len(images), 64))
        cache[image_size] = compute_fid_statistics(
            batches, extractor, description=f"{args.data} {args.eval_split}: {len(images)} images, center crop {image_size}px")
    return cache[image_size]


def generate_and_score(tokenizer_dir: Path, gpt_dir: Path, run_dir: Path, args, extractor, classifier, cache) -> dict:
    from transformers import AutoModel

    from hf_vq.evaluation import compute_gfid, compute_inception_score
    from hf_vq.generation import generate_samples, make_grid

    gpt = AutoModel.from_pretrained(gpt_dir).to(DEVICE).eval()
    tokenizer = AutoModel.from_pretrained(tokenizer_dir).to(DEVICE).eval()
    num_samples = args.num_samples or (4 * gpt.config.num_classes if args.quick else 50_000)
    sampling = dict(IU_SAMPLING, top_k=min(IU_SAMPLING["top_k"], tokenizer.config.codebook_size))
    samples = generate_samples(gpt, tokenizer, num_samples, output_dir=run_dir / "samples", batch_size=64, seed=0,
                               progress_bar=False, **sampling)
    make_grid(samples[:64]).save(run_dir / "samples_grid.png")
    scores = {"num_samples": int(num_samples), "sampling": sampling}
    if extractor is not None:
        reference = reference_statistics(args, extractor, tokenizer.config.image_size, cache)
        scores.update(compute_gfid(samples, reference, extractor))
    if classifier is not None:
        splits = args.is_splits or (1 if args.quick else 10)
        scores.update(compute_inception_score(samples, classifier, splits=min(splits, num_samples)))
    return scores


# -- the table ----------------------------------------------------------------------------------------

def _cell(value, missing: str, percent: bool = False, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{100 * value:.2f}%" if percent else f"{value:.{digits}f}"


def results_table(results: dict, missing: str) -> str:
    from hf_vq.utils.metric_tables import markdown_table

    header = ["Tokenizer", "Model", "Codes", "Usage", "PSNR", "rFID", "gFID", "IS", "Tokenizer / GPT steps"]
    rows = []
    for name, result in results.items():
        tok, gen = result["tokenizer_metrics"], result["generation"]
        label = (" (random stand-in teacher codebook)" if result.get("stand_in_codebook")
                 else " (random stand-in teacher)" if result.get("stand_in_teacher") else "")
        steps = result["tokenizer_steps"]  # a list for two stages: "stage 1 + stage 2"
        steps = " + ".join(map(str, steps)) if isinstance(steps, list) else steps
        rows.append([
            name + label, result["model_type"], result["codebook_size"],
            _cell(tok.get("codebook_usage"), missing, percent=True), _cell(tok.get("psnr"), missing),
            _cell(tok.get("rfid"), missing), _cell(gen.get("gfid"), missing),
            _cell(gen.get("inception_score"), missing), f"{steps} / {result['gpt_steps']}",
        ])
    return markdown_table(header, rows)


def results_plot(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    panels = [("Codebook usage (%)", [100 * (results[n]["tokenizer_metrics"].get("codebook_usage") or 0) for n in names]),
              ("gFID (lower is better)", [results[n]["generation"].get("gfid") for n in names])]
    figure, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * len(names), 3.6))
    for axis, (title, values) in zip(axes, panels):
        heights = [0 if v is None else v for v in values]
        axis.bar(range(len(names)), heights, color="tab:blue")
        for index, value in enumerate(values):
            if value is None:
                axis.text(index, 0, "n/a", ha="center", va="bottom")
        axis.set_xticks(range(len(names)), names, rotation=20)
        axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


# -- main ---------------------------------------------------------------------------------------------

def load_networks(args, fid_feature_extractor=None, inception_classifier=None) -> tuple:
    """(FID extractor, IS classifier, the text of a missing cell): injected, or the FID Inception from disk."""
    if fid_feature_extractor is not None or inception_classifier is not None:
        return fid_feature_extractor, inception_classifier, "n/a"
    from hf_vq.evaluation import MissingWeightsError, load_fid_inception
    from hf_vq.evaluation.fid import default_fid_weights_path

    try:
        network = load_fid_inception(args.fid_weights).to(DEVICE)
    except MissingWeightsError:
        return None, None, f"n/a (weights missing: {args.fid_weights or default_fid_weights_path()})"
    return network, network, "n/a"


def main(argv=None, *, fid_feature_extractor=None, inception_classifier=None) -> dict:
    """Run the experiment; ``fid_feature_extractor`` / ``inception_classifier`` replace the FID Inception
    (a module mapping [0, 1] images to features / one with ``class_logits``), e.g. in tests."""
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    extractor, classifier, missing = load_networks(args, fid_feature_extractor, inception_classifier)
    results, reference_cache = {}, {}
    specs = [resolve_tokenizer(spec.strip()) for spec in args.tokenizers.split(",") if spec.strip()]
    semantic = [name for name, config_paths, _ in specs if len(config_paths) == 2]  # the ones with a teacher
    unused = sorted(set(args.teachers) - set(semantic), key=str)
    if unused:
        which = "--teacher PATH" if unused == [None] else f"--teacher {[n for n in unused if n]}=PATH"
        raise ValueError(f"{which} would be unused: the semantic tokenizers trained here (the ones with a teacher) "
                         f"are {semantic}.")
    if args.quick:
        stand_in_teacher(output_dir)  # used where no --teacher / --codebook is given; the table says so
    for name, config_paths, model_dir in specs:
        started = time.perf_counter()
        run_dir = output_dir / name
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{name}] tokenizer")
        tokenizer_dir, tokenizer_metrics, tokenizer_steps, stage1_metrics = train_or_load_tokenizer(
            name, config_paths, model_dir, run_dir, args, extractor)
        print(f"[{name}] tokens")
        tokens_dir = tokenize(tokenizer_dir, run_dir, args)
        print(f"[{name}] GPT")
        gpt = train_gpt(tokenizer_dir, tokens_dir, run_dir, args)
        print(f"[{name}] samples")
        generation = generate_and_score(tokenizer_dir, gpt.output_dir, run_dir, args, extractor, classifier,
                                        reference_cache)
        saved = json.loads((Path(tokenizer_dir) / "config.json").read_text())
        teacher = saved.get(TEACHER_KEYS.get(saved["model_type"], ""))
        results[name] = {
            "tokenizer_dir": str(tokenizer_dir), "model_type": saved["model_type"],
            "codebook_size": saved.get("codebook_size"),
            "stand_in_codebook": saved["model_type"] == "vqgan_lc" and args.quick and args.codebook is None
            and model_dir is None,
            "teacher": teacher,
            "stand_in_teacher": teacher is not None and Path(teacher).name == STAND_IN_TEACHER,
            "tokenizer_steps": tokenizer_steps,  # [stage 1, stage 2] for a semantic tokenizer trained here
            "stage1_metrics": stage1_metrics and {k: v for k, v in stage1_metrics.items() if not isinstance(v, (dict, list))},
            "gpt_steps": len(gpt.history) and gpt.history[-1]["step"] + 1,
            "tokenizer_metrics": {k: v for k, v in tokenizer_metrics.items() if not isinstance(v, (dict, list))},
            "generation": generation,
            "wall_seconds": round(time.perf_counter() - started, 1),  # every stage of this row
        }
        print(f"[{name}] done in {results[name]['wall_seconds']:.0f} s")
    (output_dir / "iu_results.json").write_text(json.dumps(results, indent=2, default=str))
    table = results_table(results, missing)
    note = ("\n\nSmoke scale (--quick): shrunk models on the embedded photographs; not the paper's numbers.\n"
            if args.quick else "\n")
    if any(result["stand_in_teacher"] or result["stand_in_codebook"] for result in results.values()):
        note += (f"\nRows marked \"random stand-in teacher\" used a random tiny CLIP ({output_dir / STAND_IN_TEACHER}) "
                 "instead of the teacher their config names (no hub in a smoke run): their codes carry no semantics. "
                 "Pass --teacher PATH (a real CLIP checkpoint) for a meaningful row.\n")
    (output_dir / "iu_table.md").write_text(table + note)
    results_plot(results, output_dir / "iu_plot.png")
    print(table)
    print(f"Wrote {output_dir / 'iu_table.md'}, {output_dir / 'iu_results.json'} and {output_dir / 'iu_plot.png'}")
    return results


if __name__ == "__main__":
    main()
