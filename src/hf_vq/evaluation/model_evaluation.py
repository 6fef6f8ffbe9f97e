"""Evaluate a saved tokenizer: what ``hf-vq evaluate MODEL_DIR`` runs.

Loads the model, center-crops the evaluation images (ADM crop at the model's
resolution), computes the selected metrics in one pass and writes the metrics JSON with
its benchmark row. Metrics whose network weights are missing are skipped with a message
saying which file is missing and where to put it; the others still run.
"""

import json
import os
import re
import sys
from pathlib import Path

import torch

from .benchmark import metrics_markdown
from .fid import load_fid_inception
from .metrics import MissingWeightsError, load_lpips_network
from .reconstruction import (
    AVAILABLE_METRICS,
    check_metric_names,
    evaluate_reconstruction,
)


def hf_vq_cache_dir() -> Path:
    return Path(os.environ.get("HF_VQ_CACHE", Path.home() / ".cache" / "hf_vq")).expanduser()


def default_fid_reference_path(data_description: str) -> Path:
    """One cached reference file per evaluation data (source, split, crop size, image count)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", data_description).strip("-").lower()
    return hf_vq_cache_dir() / "fid_reference" / f"{slug}.npz"


class _CenterCropped(torch.utils.data.Dataset):
    def __init__(self, images, transform):
        self.images = images
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(self.images[index])


def _model_image_size(model_dir: Path, model) -> int:
    processor_file = model_dir / "preprocessor_config.json"
    if processor_file.is_file():
        size = json.loads(processor_file.read_text()).get("size")
        if isinstance(size, dict):
            size = size.get("height") or size.get("shortest_edge")
        if size:
            return int(size)
    return int(model.config.image_size)


def evaluate_model_dir(
    model_dir,
    data: str = "embedded",
    split: str = "validation",
    metrics=AVAILABLE_METRICS,
    output=None,
    batch_size: int = 64,
    image_size: int | None = None,
    max_images: int | None = None,
    lpips_weights=None,
    fid_weights=None,
    fid_reference=None,
    lpips_network=None,
    fid_feature_extractor=None,
    device=None,
    progress: bool = True,
) -> dict:
    """Evaluate the tokenizer saved in ``model_dir``; returns (and writes to ``output``) the metrics.

    ``lpips_network`` / ``fid_feature_extractor`` replace the networks loaded from
    ``lpips_weights`` / ``fid_weights`` (or torch's hub cache). ``fid_reference`` is the
    ``.npz`` cache of the originals' statistics (default: under ``$HF_VQ_CACHE``).
    """
    from transformers import AutoModel

    from ..data import EvalTransform
    from ..data.sources import load_image_source

    metrics = check_metric_names(metrics)
    model_dir = Path(model_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = AutoModel.from_pretrained(model_dir).to(device)
    image_size = image_size or _model_image_size(model_dir, model)

    images, source_description = load_image_source(data, split, max_images)
    data_description = f"{source_description}, ADM center crop {image_size}px, {len(images)} images"
    loader = torch.utils.data.DataLoader(_CenterCropped(images, EvalTransform(image_size)), batch_size=batch_size)

    # Networks given as arguments win; otherwise they are read from disk, and a metric whose
    # weights are missing is skipped (with the reason) so the others still run.
    skipped = {}
    if "lpips" in metrics and lpips_network is None:
        try:
            lpips_network = load_lpips_network(lpips_weights).to(device)
        except MissingWeightsError as error:
            skipped["lpips"] = str(error)
    if "rfid" in metrics and fid_feature_extractor is None:
        try:
            fid_feature_extractor = load_fid_inception(fid_weights).to(device)
        except MissingWeightsError as error:
            skipped["rfid"] = str(error)
    for name, reason in skipped.items():
        print(f"Skipping {name}: {reason}", file=sys.stderr)
    runnable = [name for name in metrics if name not in skipped]
    if "rfid" in runnable and fid_reference is None:
        fid_reference = default_fid_reference_path(data_description)

    results = evaluate_reconstruction(
        model, loader, device=device, progress=progress, metrics=runnable,
        lpips_network=lpips_network, fid_feature_extractor=fid_feature_extractor,
        fid_reference=fid_reference, data_description=data_description,
    )
    results["model"] = str(model_dir)
    results["model_type"] = model.config.model_type
    results["metrics"] = list(runnable)
    if skipped:
        results["skipped_metrics"] = skipped
    results["benchmark_row"] = metrics_markdown(results)
    if output:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2))
    return results
