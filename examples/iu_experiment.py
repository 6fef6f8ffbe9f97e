"""The IU-tokenizer experiment end to end: tokenizers -> tokens -> class-conditional GPT -> samples -> one table.

    python examples/iu_experiment.py --quick                                   # embedded data, CPU, minutes
    python examples/iu_experiment.py --quick --tokenizers vqgan,outputs/demo-vqvae
    python examples/iu_experiment.py --data ILSVRC/imagenet-1k --codebook codebooks/clip-l14-imagenet-100k.safetensors \
        --fid-reference imagenet-val-256.npz                                   # full scale (GPUs; days)

For every tokenizer of ``--tokenizers`` (comma-separated; default ``vqgan,fsq,cvq,vqgan_lc``):

1. **tokenizer**: a recipe name (``vqgan`` = ``configs/iu/vqgan_8192.yaml``, ``fsq`` = ``configs/iu/fsq_8000.yaml``,
   ``cvq`` = ``configs/iu/cvq_8192.yaml``, ``vqgan_lc`` = ``configs/imagenet256/vqgan-lc.yaml``), any training
   YAML, or a saved model folder (loaded, not trained: e.g. a converted checkpoint). Training ends with the
   evaluation on held-out images: codebook usage, PSNR and rFID (``metrics.json``); a loaded model is
   evaluated the same way. VQGAN-LC needs its frozen codebook: ``--codebook FILE`` (``hf-vq build-codebook``);
   with ``--quick`` and no file, the example builds a small one with ``build_codebook`` from a *random* tiny
   CLIP (a stand-in that only exercises the stage: its codes carry no semantics, and the table says so).
2. **tokens**: the dataset encoded with ``hf_vq.data.token_datasets.tokenize_dataset`` (``hf-vq tokenize``).
3. **GPT**: ``hf_vq.training.train_ar`` (``hf-vq train-ar``) with ``--ar-config`` (``configs/ar/gpt-b.yaml``;
   ``configs/ar/tiny.yaml`` with ``--quick``) on those tokens.
4. **samples**: ``generate_samples`` with the IU sampler (guidance 1.75, top-k 600, top-p 0.92, temperature 1),
   one per class in turn, then gFID against ``--fid-reference`` (default: statistics of the evaluation
   images, computed here) and the Inception Score.

Written to ``--output-dir`` (default ``outputs/iu_experiment``): one folder per tokenizer (``tokenizer/``,
``tokens/``, ``gpt/``, ``samples/``), ``iu_table.md`` (one row per tokenizer: usage, PSNR, rFID, gFID, IS),
``iu_results.json`` and ``iu_plot.png``. rFID, gFID and IS need the FID Inception weights
(``pt_inception-2015-12-05-6726825d.pth`` in torch's hub cache, or ``--fid-weights``); without them the
cells read "n/a (weights missing: PATH)". ``--quick`` shrinks every model (16 px images, a 2-level
backbone, small codebooks, a tiny GPT, LPIPS off) and trains a few hundred steps: a smoke-scale run
whose numbers are not the paper's. The paper (arXiv 2411.04406) reports gFID 15.78 for VQGAN and 4.10
for VQ-KD (CLIP) with a 24-layer GPT; VQGAN-LC reports 99.9% usage of 100,000 codes.
"""

import argparse
import json
import math
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPES = {
    "vqgan": REPO / "configs" / "iu" / "vqgan_8192.yaml",
    "fsq": REPO / "configs" / "iu" / "fsq_8000.yaml",
    "cvq": REPO / "configs" / "iu" / "cvq_8192.yaml",
    "vqgan_lc": REPO / "configs" / "imagenet256" / "vqgan-lc.yaml",
}
DEFAULT_TOKENIZERS = "vqgan,fsq,cvq,vqgan_lc"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # tokenizing and sampling (training runs under Accelerate)
# The IU paper's sampler (REFERENCES: AR generation).
IU_SAMPLING = {"guidance_scale": 1.75, "top_k": 600, "top_p": 0.92, "temperature": 1.0}
# --quick: every model shrunk to a 2-level backbone at 16 px (8 x 8 = 64 tokens) with a small codebook.
QUICK_BACKBONE = {"image_size": 16, "base_channels": 32, "channel_multipliers": [1, 2], "z_channels": 32,
                  "num_res_blocks": 1, "attn_resolutions": [8]}
QUICK_CODEBOOK = {"vqgan": {"codebook_size": 512}, "vqgan_cvq": {"codebook_size": 512},
                  "vqgan_fsq": {"levels": [8, 5, 5, 5]}, "vqgan_lc": {}}
QUICK_LC_CODES_PER_CLASS = 16


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
    """(name, config YAML or None, model folder or None) for one entry of --tokenizers."""
    if spec in RECIPES:
        return spec, RECIPES[spec], None
    path = Path(spec)
    if path.is_dir() and (path / "config.json").is_file():
        return path.name, None, path
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return path.stem, path, None
    raise ValueError(f"--tokenizers entry {spec!r} is not a recipe ({sorted(RECIPES)}), a training YAML or a saved "
                     "model folder (with config.json).")


def build_quick_codebook(run_dir: Path, args) -> Path:
    """A small VQGAN-LC codebook from a RANDOM tiny CLIP (--quick without --codebook): exercises build-codebook only."""
    from transformers import CLIPConfig, CLIPModel

    from hf_vq.data.teacher_codebook import build_codebook
    from hf_vq.modules.teachers import FrozenTeacher

    teacher_dir = run_dir / "random-clip-stand-in"
    torch.manual_seed(0)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8)
    text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64,
                bos_token_id=0, eos_token_id=1, pad_token_id=1)
    CLIPModel(CLIPConfig(vision_config=vision, text_config=text, projection_dim=24)).save_pretrained(teacher_dir)
    teacher = FrozenTeacher.from_pretrained(str(teacher_dir))
    dataset = load_images(args.data, args.train_split, args.max_images)
    num_classes = len(set(dataset["label"]))
    output = run_dir / "codebook.safetensors"
    build_codebook(teacher, dataset, QUICK_LC_CODES_PER_CLASS * num_classes, output, pool=1, max_iters=10,
                   progress=False)
    return output


def tokenizer_config(name: str, config_path: Path, run_dir: Path, args) -> dict:
    """The tokenizer's training config, shrunk for --quick and pointed at --data and run_dir."""
    raw = yaml.safe_load(config_path.read_text())
    raw["output_dir"] = str(run_dir / "tokenizer")
    model, training, loss = raw["model"], raw.setdefault("training", {}), raw.setdefault("loss", {})
    if args.quick:  # a smoke run starts over; a full run keeps the recipe's checkpoints and `resume_from: latest`
        training.update({"resume_from": None, "checkpoint_every": 0, "log_images_every": 0, "overwrite": True})
    raw["data"] = {**{k: v for k, v in raw.get("data", {}).items() if k not in ("dataset", "train_data_dir")},
                   **data_section(args.data), "train_split": args.train_split, "eval_split": args.eval_split}
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
        model.update(QUICK_BACKBONE)
        model.update(QUICK_CODEBOOK.get(model.get("model_type"), {}))
        raw["data"].update({"image_size": QUICK_BACKBONE["image_size"], "num_workers": 0, "max_eval_images": 64})
        training.update({"batch_size": 16, "max_steps": 300, "learning_rate": 1e-3, "disc_learning_rate": 1e-3,
                         "lr_scheduler": "constant", "warmup_steps": 0, "log_every": 50, "mixed_precision": "no"})
        # LPIPS needs downloaded VGG weights: off; the GAN stays, switched on halfway, with a small discriminator.
        # (2 PatchGAN layers: 3 need images of at least 24 px.)
        loss.update({"lpips_weight": 0.0, "disc_channels": 16, "disc_layers": 2, "disc_start": 150})
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
                         "decoder (stage 2) first and pass that model folder instead.")


def train_or_load_tokenizer(name, config_path, model_dir, run_dir: Path, args, extractor) -> tuple:
    """(tokenizer folder, its metrics: codebook_usage, psnr, rfid when the Inception is there, ...)."""
    if model_dir is not None:
        check_decodes_pixels(name, json.loads((Path(model_dir) / "config.json").read_text()))
    else:
        check_decodes_pixels(name, yaml.safe_load(Path(config_path).read_text())["model"])
    if model_dir is not None:
        from hf_vq.evaluation.model_evaluation import evaluate_model_dir

        metrics = ["usage", "psnr", "ssim"] + (["rfid"] if extractor is not None else [])
        result = evaluate_model_dir(model_dir, data=args.data, split=args.eval_split, metrics=metrics,
                                    output=run_dir / "tokenizer_eval_metrics.json", max_images=args.eval_images,
                                    fid_feature_extractor=extractor, progress=False)
        return Path(model_dir), result
    finished = run_dir / "tokenizer"
    if not args.quick and (finished / "model.safetensors").is_file() and (finished / "metrics.json").is_file():
        print(f"[{name}] reusing the trained tokenizer in {finished}")  # a relaunched full run skips finished stages
        return finished, json.loads((finished / "metrics.json").read_text())
    from hf_vq.training import TrainConfig, run_training

    config = TrainConfig.from_dict(tokenizer_config(name, config_path, run_dir, args))
    result = run_training(config, fid_feature_extractor=extractor)
    return result.output_dir, result.metrics


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
        rows.append([
            name + (" (random stand-in teacher codebook)" if result.get("stand_in_codebook") else ""),
            result["model_type"], result["codebook_size"], _cell(tok.get("codebook_usage"), missing, percent=True),
            _cell(tok.get("psnr"), missing), _cell(tok.get("rfid"), missing), _cell(gen.get("gfid"), missing),
            _cell(gen.get("inception_score"), missing), f"{result['tokenizer_steps']} / {result['gpt_steps']}",
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
    for spec in [s.strip() for s in args.tokenizers.split(",") if s.strip()]:
        name, config_path, model_dir = resolve_tokenizer(spec)
        run_dir = output_dir / name
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{name}] tokenizer")
        tokenizer_dir, tokenizer_metrics = train_or_load_tokenizer(name, config_path, model_dir, run_dir, args, extractor)
        print(f"[{name}] tokens")
        tokens_dir = tokenize(tokenizer_dir, run_dir, args)
        print(f"[{name}] GPT")
        gpt = train_gpt(tokenizer_dir, tokens_dir, run_dir, args)
        print(f"[{name}] samples")
        generation = generate_and_score(tokenizer_dir, gpt.output_dir, run_dir, args, extractor, classifier,
                                        reference_cache)
        saved = json.loads((Path(tokenizer_dir) / "config.json").read_text())
        train_config = Path(tokenizer_dir) / "train_config.json"
        results[name] = {
            "tokenizer_dir": str(tokenizer_dir), "model_type": saved["model_type"],
            "codebook_size": saved.get("codebook_size"),
            "stand_in_codebook": saved["model_type"] == "vqgan_lc" and args.quick and args.codebook is None
            and model_dir is None,
            "tokenizer_steps": json.loads(train_config.read_text())["training"]["max_steps"]
            if model_dir is None and train_config.is_file() else "loaded",
            "gpt_steps": len(gpt.history) and gpt.history[-1]["step"] + 1,
            "tokenizer_metrics": {k: v for k, v in tokenizer_metrics.items() if not isinstance(v, (dict, list))},
            "generation": generation,
        }
    (output_dir / "iu_results.json").write_text(json.dumps(results, indent=2, default=str))
    table = results_table(results, missing)
    note = ("\n\nSmoke scale (--quick): shrunk models on the embedded photographs; not the paper's numbers.\n"
            if args.quick else "\n")
    (output_dir / "iu_table.md").write_text(table + note)
    results_plot(results, output_dir / "iu_plot.png")
    print(table)
    print(f"Wrote {output_dir / 'iu_table.md'}, {output_dir / 'iu_results.json'} and {output_dir / 'iu_plot.png'}")
    return results


if __name__ == "__main__":
    main()
