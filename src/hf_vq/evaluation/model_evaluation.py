"""Evaluate a saved tokenizer: what ``hf-vq evaluate MODEL_DIR`` runs.

Loads the model, center-crops the evaluation images (ADM crop at the model's
resolution), computes the selected metrics in one pass and writes the metrics JSON with
its benchmark row. Metrics whose network weights are missing are skipped with a message
saying which file is missing and where to put it; the others still run. An unreadable
image is skipped with a warning naming it (as in training) and counted
(``unreadable_images_skipped``).

The cached reference statistics of the originals are keyed by what they are computed
from: the resolved data source and its content fingerprint (file list, sizes and mtimes
of a folder; ``datasets``' fingerprint and cache folder, named by the Hub revision, of a
Hub dataset), the crop size, the image count and the rFID protocol; the file stores
that record too.
"""

import hashlib
import json
import re
import sys
import warnings
from pathlib import Path

import torch

from ..utils.cache import hf_vq_cache_dir
from .benchmark import metrics_markdown
from .fid import check_fid_protocol, load_fid_feature_extractor
from .metrics import MissingWeightsError, load_lpips_network
from .reconstruction import (
    AVAILABLE_METRICS,
    check_metric_names,
    evaluate_reconstruction,
)


def default_fid_reference_path(data_description: str, source: dict | None = None) -> Path:
    """One cached reference file per evaluation data: a readable name, and a digest of ``source``
    (resolved data source and content fingerprint, crop size, image count, protocol)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", data_description).strip("-").lower()[:80]
    if source is not None:
        slug += "-" + hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16]
    return hf_vq_cache_dir() / "fid_reference" / f"{slug}.npz"


class _CenterCropped(torch.utils.data.Dataset):
    """Center crops of ``images``; an unreadable image gives None (skipped by :func:`_collate_readable`)."""

    def __init__(self, images, transform):
        self.images = images
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        from ..data.datasets import UNREADABLE_IMAGE_ERRORS

        try:
            return self.transform(self.images[index])
        except UNREADABLE_IMAGE_ERRORS as error:
            name = self.images.describe(index) if hasattr(self.images, "describe") else f"image {index}"
            warnings.warn(f"Skipping unreadable image {name}: {error}", stacklevel=2)
            return None


def _collate_readable(items):
    """(stacked readable images, number of unreadable ones)."""
    readable = [item for item in items if item is not None]
    pixel_values = torch.stack(readable) if readable else torch.empty(0)
    return pixel_values, len(items) - len(readable)


def _readable_batches(loader, counter: dict):
    for pixel_values, num_unreadable in loader:
        counter["unreadable"] += num_unreadable
        if len(pixel_values):
            yield pixel_values


def _load_tokenizer(model_dir: Path):
    """The tokenizer saved in ``model_dir``, or an error that says what the folder is and what to pass."""
    from transformers import AutoConfig, AutoModel

    from ..models.auto import TOKENIZER_CLASSES as TOKENIZERS

    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"Model directory {model_dir} does not exist. Pass the folder a training run (output_dir) or "
            "`hf-vq convert` wrote: it holds config.json and model.safetensors."
        )
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} has no config.json, so it is not a saved model. Pass the folder a training run "
            "(output_dir) or `hf-vq convert` wrote."
        )
    model_type = json.loads((model_dir / "config.json").read_text()).get("model_type")
    if model_type not in TOKENIZERS:
        raise ValueError(
            f"{model_dir} holds a {model_type!r} model, not an image tokenizer; `hf-vq evaluate` measures "
            f"tokenizers ({', '.join(TOKENIZERS)}). For a GPT, generate samples with `hf-vq generate`."
        )
    AutoConfig.from_pretrained(model_dir)  # config errors surface here, before the weights are read
    return AutoModel.from_pretrained(model_dir)


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
    fid_protocol: str = "pytorch-fid",
) -> dict:
    """Evaluate the tokenizer saved in ``model_dir``; returns (and writes to ``output``) the metrics.

    ``lpips_network`` / ``fid_feature_extractor`` replace the networks loaded from
    ``lpips_weights`` / ``fid_weights`` (or torch's hub cache). ``fid_protocol`` picks the
    rFID network and preprocessing (``"pytorch-fid"`` or ``"torch-fidelity"``, see
    :mod:`hf_vq.evaluation.fid`); an injected extractor that names another protocol is
    refused. ``fid_reference`` is the ``.npz`` cache of the originals' statistics
    (default: under ``$HF_VQ_CACHE``, keyed by the data's content).
    """

    from ..data import EvalTransform
    from ..data.sources import load_image_source, source_fingerprint

    metrics = check_metric_names(metrics)
    check_fid_protocol(fid_protocol)
    if max_images is not None and max_images < 1:
        raise ValueError(f"--max-images must be a positive number of images; got {max_images}.")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be a positive number; got {batch_size}.")
    model_dir = Path(model_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = _load_tokenizer(model_dir).to(device)
    image_size = image_size or _model_image_size(model_dir, model)

    images, source_description = load_image_source(data, split, max_images)
    data_description = f"{source_description}, ADM center crop {image_size}px, {len(images)} images"
    loader = torch.utils.data.DataLoader(
        _CenterCropped(images, EvalTransform(image_size)), batch_size=batch_size, collate_fn=_collate_readable
    )
    unreadable = {"unreadable": 0}

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
            fid_feature_extractor = load_fid_feature_extractor(fid_protocol, fid_weights).to(device)
        except MissingWeightsError as error:
            skipped["rfid"] = str(error)
    elif "rfid" in metrics:
        given = getattr(fid_feature_extractor, "protocol", None)
        if given is not None and given != fid_protocol:
            raise ValueError(
                f"fid_feature_extractor implements the {given!r} FID protocol, but fid_protocol is {fid_protocol!r}. "
                "Pass the matching extractor or protocol."
            )
    for name, reason in skipped.items():
        print(f"Skipping {name}: {reason}", file=sys.stderr)
    runnable = [name for name in metrics if name not in skipped]
    reference_source = None
    if "rfid" in runnable:
        reference_source = {
            "data": source_fingerprint(images), "split": split, "crop_size": image_size,
            "num_images": len(images), "protocol": getattr(fid_feature_extractor, "protocol", "custom"),
        }
        if fid_reference is None:
            fid_reference = default_fid_reference_path(data_description, reference_source)

    results = evaluate_reconstruction(
        model, _readable_batches(loader, unreadable), device=device, progress=progress, metrics=runnable,
        lpips_network=lpips_network, fid_feature_extractor=fid_feature_extractor,
        fid_reference=fid_reference, data_description=data_description, fid_reference_source=reference_source,
    )
    results["unreadable_images_skipped"] = unreadable["unreadable"]
    if unreadable["unreadable"]:
        print(f"Skipped {unreadable['unreadable']} unreadable image(s) of {len(images)}.", file=sys.stderr)
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
