"""hf_vq's on-disk cache root (FID reference statistics, compiled CPU kernels)."""

import os
from pathlib import Path


def hf_vq_cache_dir() -> Path:
    """``$HF_VQ_CACHE``, else ``~/.cache/hf_vq``."""
    return Path(os.environ.get("HF_VQ_CACHE", Path.home() / ".cache" / "hf_vq")).expanduser()
