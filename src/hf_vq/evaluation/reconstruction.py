"""Reconstruct an evaluation set and report codebook usage, perplexity and image metrics.

One pass over the data: every batch is encoded, decoded, and fed to the selected
metrics. Counts and sums are all-reduced across processes, so with several processes
each one may see its own shard of the evaluation set.
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..quantizers import CodebookUsage
from ..utils.distributed import all_reduce_sum
from .fid import (
    FeatureStatistics,
    FIDStatistics,
    feature_extractor_description,
    feature_extractor_protocol,
    frechet_distance,
)
from .metrics import lpips_distance, psnr, ssim, to_unit_range

AVAILABLE_METRICS = ("usage", "psnr", "ssim", "lpips", "rfid")
# The metrics that need no network weights: what training reports at its end.
DEFAULT_METRICS = ("usage", "psnr", "ssim")
PER_IMAGE_METRICS = {"psnr": psnr, "ssim": ssim}


def check_metric_names(metrics: Sequence[str]) -> tuple:
    unknown = [name for name in metrics if name not in AVAILABLE_METRICS]
    if unknown:
        raise ValueError(f"Unknown metrics {unknown}; choose from {list(AVAILABLE_METRICS)}.")
    return tuple(dict.fromkeys(metrics))


@torch.no_grad()
def evaluate_reconstruction(
    model,
    batches: Iterable[torch.Tensor],
    device=None,
    progress: bool = True,
    metrics: Sequence[str] = DEFAULT_METRICS,
    lpips_network=None,
    fid_feature_extractor=None,
    fid_reference=None,
    data_description: str = "evaluation set",
    fid_reference_source: dict | None = None,
) -> dict:
    """Codebook usage / perplexity over the whole set and mean per-image metrics.

    ``batches`` yields pixel tensors (B, C, H, W) in [-1, 1] (center-cropped originals).

    Args:
        metrics: names from ``AVAILABLE_METRICS``.
        lpips_network: the LPIPS network ("lpips"), e.g. from ``load_lpips_network()``.
        fid_feature_extractor: images in [0, 1] -> (B, D) features ("rfid"), e.g.
            ``load_fid_inception()``.
        fid_reference: ``FIDStatistics`` of the originals, or the path of their ``.npz``
            cache. When the path does not exist yet (or None is given), the statistics are
            computed from the originals in this same pass and saved to the path.
        data_description: names the evaluation data in the reference statistics.
        fid_reference_source: what the reference statistics must be computed from (data
            source and content fingerprint, crop, protocol; JSON-ready). Stored in newly
            computed statistics; a cached file that records another source is refused.

    Returns a JSON-ready dict; rFID comes with its protocol (``rfid_protocol``) and the
    reference statistics it used (``rfid_reference``: description, image count, protocol,
    source, cache path). An evaluation set without images is an error, not a NaN.
    """
    metrics = check_metric_names(metrics)
    if "lpips" in metrics and lpips_network is None:
        raise ValueError("The lpips metric needs lpips_network (hf_vq.evaluation.load_lpips_network()).")
    if "rfid" in metrics and fid_feature_extractor is None:
        raise ValueError("The rfid metric needs fid_feature_extractor (hf_vq.evaluation.load_fid_inception()).")
    image_metrics = [name for name in metrics if name != "usage"]
    if image_metrics and not getattr(model, "decodes_pixels", True):
        raise ValueError(
            f"{type(model).__name__} decodes teacher features, not images (a stage-1 tokenizer): the image metrics "
            f"{image_metrics} do not apply. Evaluate its codes with metrics=['usage'], or train a pixel decoder behind it."
        )
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()

    reference_statistics, reference_path = None, None
    if "rfid" in metrics:
        reference_statistics, reference_path = _cached_reference(
            fid_reference, fid_feature_extractor, fid_reference_source
        )
    extractor_device = next(fid_feature_extractor.parameters()).device if "rfid" in metrics else None
    reconstruction_features = FeatureStatistics()
    original_features = FeatureStatistics()

    usage = CodebookUsage(model.config.codebook_size, device=device)
    per_image_names = [name for name in metrics if name in ("psnr", "ssim", "lpips")]
    # Sums live on the evaluation device: NCCL all-reduces only accelerator tensors.
    sum_dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
    sums = {name: torch.zeros((), dtype=sum_dtype, device=device) for name in per_image_names}
    num_images = torch.zeros((), dtype=sum_dtype, device=device)
    for pixel_values in tqdm(batches, desc="evaluate", disable=not progress):
        pixel_values = pixel_values.to(device)
        if pixel_values.shape[0] == 0:
            continue
        encoded = model.encode(pixel_values)
        reconstruction = model.decode(encoded.quantized).sample if image_metrics else None
        usage.update(encoded.indices)
        num_images += pixel_values.shape[0]
        for name in per_image_names:
            if name == "lpips":
                values = lpips_distance(reconstruction, pixel_values, lpips_network)
            else:
                values = PER_IMAGE_METRICS[name](reconstruction, pixel_values)
            sums[name] += values.to(sums[name]).sum()
        if "rfid" in metrics:
            reconstruction_features.update(fid_feature_extractor(to_unit_range(reconstruction).to(extractor_device)))
            if reference_statistics is None:
                original_features.update(fid_feature_extractor(to_unit_range(pixel_values).to(extractor_device)))
    model.train(was_training)

    total_images = int(all_reduce_sum(num_images).item())
    if total_images == 0:
        raise ValueError(
            f"No images were evaluated ({data_description}): the evaluation set is empty or nothing in it could be "
            "read. Pass data with at least one readable image."
        )
    results = usage.compute(all_reduce=True) if "usage" in metrics else {}
    for name in per_image_names:
        results[name] = float(all_reduce_sum(sums[name]).item() / total_images)
    results["num_images"] = total_images
    results["eval_data"] = data_description
    if "rfid" in metrics:
        extractor_name = feature_extractor_description(fid_feature_extractor)
        protocol = feature_extractor_protocol(fid_feature_extractor)
        if reference_statistics is None:
            source = dict(fid_reference_source or {"data": data_description})
            source.setdefault("protocol", protocol)
            source.setdefault("feature_extractor", extractor_name)
            reference_statistics = original_features.compute(
                f"{data_description} originals; features: {extractor_name}", all_reduce=True, source=source
            )
            if reference_path is not None and _is_main_process():
                reference_statistics.save(reference_path)
        statistics = reconstruction_features.compute(f"reconstructions; features: {extractor_name}", all_reduce=True)
        results["rfid"] = frechet_distance(statistics, reference_statistics)
        results["rfid_protocol"] = protocol
        results["rfid_reference"] = {
            "description": reference_statistics.description,
            "num_images": reference_statistics.num_images,
            "protocol": (reference_statistics.source or {}).get("protocol", "not recorded"),
            "source": reference_statistics.source,
            "path": str(reference_path) if reference_path else None,
        }
        results["rfid_num_images"] = statistics.num_images
        results["rfid_feature_extractor"] = extractor_name
    return results


def _cached_reference(fid_reference, extractor, expected_source=None):
    """(statistics or None when they must be computed, path to cache them at or None)."""
    if fid_reference is None or isinstance(fid_reference, FIDStatistics):
        return fid_reference, None
    path = Path(fid_reference)
    if not path.is_file():
        return None, path
    statistics = FIDStatistics.load(path)
    extractor_name = feature_extractor_description(extractor)
    if extractor_name not in statistics.description:
        raise ValueError(
            f"The cached FID reference {path} was computed with other features ({statistics.description!r}), "
            f"not {extractor_name!r}. Delete it or pass another --fid-reference path."
        )
    # A file that records what it was computed from must have been computed from this data
    # (statistics from elsewhere, without a record, are the user's choice and are named as such).
    if expected_source is not None and statistics.source and not _same_source(statistics.source, expected_source):
        raise ValueError(
            f"The cached FID reference {path} was computed from other data ({json.dumps(statistics.source)}), "
            f"not from this evaluation's ({json.dumps(expected_source)}). Delete it or pass another --fid-reference path."
        )
    return statistics, path


def _same_source(stored: dict, expected: dict) -> bool:
    """Every field ``expected`` names must match (the file may record more, e.g. the feature extractor)."""
    return all(stored.get(key) == value for key, value in expected.items())


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
