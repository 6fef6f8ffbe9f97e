"""The opt-in fused CPU search kernel: ``kernels/nearest_code.c``, compiled on first use, loaded with ctypes.

What it computes: for each row of ``left`` (N, D), the first index of the minimum of ``left @ right`` (D, K), in
one pass that never stores more than one group of 64 codes x 16 rows of scores (4 KiB). See the C file for the
blocking. Why a C kernel: the tiled PyTorch path (``nearest.py``) runs its skinny matmul (inner dimension
``d + 1``) at about 55% of the square-matmul FLOP/s and then reads every score again for the minimum (2.7-3.3x the
FLOP floor at dim 8); fused, the scores are reduced while still in registers (about 1.0-1.2x the floor measured on
the 2-core EPYC benchmark machine, dim 8, one thread).

How it is built: the system C compiler (``$CC``, else ``cc``, else ``gcc``) with ``COMPILE_FLAGS``, into
``$HF_VQ_CACHE/kernels/<digest>.so`` (default ``~/.cache/hf_vq/kernels``); the digest covers the sources, the
compiler's identity, the flags and the CPU's feature flags (``-march=native`` code must not run on another CPU),
so a changed source or machine compiles again. The file is written under a temporary name and renamed, so a
concurrent or interrupted build never leaves a partial library behind. A cached library is loaded only if it and
its folder belong to this user (or root) and nobody else can write them (``check_trusted``). Rows are split across
``torch.get_num_threads()`` Python threads (ctypes releases the GIL during the call).
"""

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ..utils.cache import hf_vq_cache_dir

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL_SOURCES = ("nearest_code.c", "first_argmin.h")
# -mtune=generic: with this EPYC's own tuning (znver3) GCC 12 folds the row loads into every FMA (12 loads per
# 8 FMAs, load-bound at 1.5x the floor); generic tuning keeps them in registers (1.0x). -ffp-contract=fast makes
# every multiply-add one FMA, so a score is the same FMA chain for every code (GNU C's default, stated).
COMPILE_FLAGS = ("-O3", "-march=native", "-mtune=generic", "-ffp-contract=fast", "-std=gnu11", "-fPIC", "-shared")
FUNCTIONS = {torch.float32: "hf_vq_first_argmin_float32", torch.float64: "hf_vq_first_argmin_float64"}

_loaded = {}
_load_lock = threading.Lock()


class KernelBuildError(RuntimeError):
    """The fused kernel could not be compiled or loaded (no C compiler, or it failed)."""


def _compiler() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise KernelBuildError(
        "The fused CPU search kernel needs a C compiler and none was found (tried $CC, cc, gcc). Fix: install one "
        "(Debian/Ubuntu: apt-get install gcc) or set CC to its path; or use the default search with "
        "hf_vq.quantizers.nearest.set_cpu_search_kernel('tiled')."
    )


def _cpu_flags() -> str:
    """The CPU's feature flags (what ``-march=native`` compiles for)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.machine() + " " + platform.processor()


def library_path(compiler: str, flags: tuple) -> Path:
    """Where the library for these sources, compiler, flags and CPU lives in the cache."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256()
    for name in KERNEL_SOURCES:
        digest.update((KERNEL_DIR / name).read_bytes())
    for part in (compiler, version, " ".join(flags), _cpu_flags()):
        digest.update(part.encode() + b"\0")
    return hf_vq_cache_dir() / "kernels" / f"nearest_code-{digest.hexdigest()[:24]}.so"


def _trusted_owners() -> set:
    """User ids whose files may be loaded as code: this process's user and root."""
    return {os.getuid(), 0}


def check_trusted(path: Path) -> None:
    """Refuse to load a library that someone else could have put or changed there.

    Loading a shared library runs its code. The cached file and its folder must be this user's (or root's), a plain
    file (not a link) and writable by nobody else; a file that fails is reported, never rebuilt over or loaded."""
    if not hasattr(os, "getuid"):  # no POSIX owners (Windows): nothing to compare
        return
    trusted_owners = _trusted_owners()
    for item, kind in ((path.parent, "folder"), (path, "file")):
        info = item.lstat()
        problem = None
        if kind == "file" and not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file (a link or something else)"
        elif info.st_uid not in trusted_owners:
            problem = f"belongs to another user (uid {info.st_uid})"
        elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            problem = f"is writable by the group or by everyone (mode {stat.filemode(info.st_mode)})"
        if problem:
            raise KernelBuildError(
                f"Refusing to load the fused CPU search kernel: the cached {kind} {item} {problem}, so someone else "
                f"could have changed the code it runs. Fix: delete {path} and make {path.parent} yours and writable "
                "only by you (chmod go-w), or point HF_VQ_CACHE at a folder only you can write; the kernel is then "
                "compiled again."
            )


def build(compiler: str | None = None, flags: tuple = COMPILE_FLAGS) -> Path:
    """Compile the kernel into the cache unless it is there already; returns the library's path."""
    compiler = compiler or _compiler()
    path = library_path(compiler, flags)
    if path.exists():
        check_trusted(path)
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".so.partial")
    os.close(handle)
    try:
        done = subprocess.run([compiler, *flags, "-o", temporary, str(KERNEL_DIR / "nearest_code.c")],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise KernelBuildError(
                f"Compiling the fused CPU search kernel failed ({compiler} {' '.join(flags)}):\n"
                f"{done.stderr.strip()[-2000:]}\nFix: install a working C compiler (Debian/Ubuntu: apt-get install "
                "gcc) or set CC to one; or use the default search with "
                "hf_vq.quantizers.nearest.set_cpu_search_kernel('tiled')."
            )
        os.chmod(temporary, 0o755)  # whatever the umask: nobody else may write the code we load
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


class FusedKernel:
    """The loaded library: ``first_argmin(left, right)`` and its register-block sizes."""

    def __init__(self, path: Path):
        check_trusted(path)
        self.library = ctypes.CDLL(str(path))
        self.rows_per_block = ctypes.c_int.in_dll(self.library, "hf_vq_rows_per_block").value
        self.codes_per_block = ctypes.c_int.in_dll(self.library, "hf_vq_codes_per_block").value
        self.rows_per_panel = ctypes.c_int.in_dll(self.library, "hf_vq_rows_per_panel").value
        self.functions = {}
        for dtype, name in FUNCTIONS.items():
            function = getattr(self.library, name)
            function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                 ctypes.c_void_p]
            function.restype = None
            self.functions[dtype] = function

    def first_argmin(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """First index of the minimum of each row of ``left @ right``: ``left`` (N, D), ``right`` (D, K), CPU,
        float32 or float64, K >= 1."""
        function = self.functions[left.dtype]
        num_rows, dim = left.shape
        block = self.rows_per_block
        # rows packed as (blocks, D, 16): one block's component j is 16 contiguous values (two AVX vectors);
        # the padding rows are zeros and their results are dropped
        padded = torch.cat([left, left.new_zeros(-num_rows % block, dim)]) if num_rows % block else left
        packed = padded.reshape(-1, block, dim).transpose(1, 2).contiguous()
        # codes as (K, D) rows, K padded to whole register blocks with copies of the last code: a copy can only
        # tie with it and comes later, so it is never the first index of a minimum
        codes = right.t()
        missing = -codes.shape[0] % self.codes_per_block
        codes = (torch.cat([codes, codes[-1:].expand(missing, -1)]) if missing else codes).contiguous()
        out = torch.empty(num_rows, dtype=torch.long)

        def run(first_row: int, count: int) -> None:
            function(packed.data_ptr() + first_row * dim * packed.element_size(), codes.data_ptr(), count,
                     codes.shape[0], dim, out.data_ptr() + first_row * out.element_size())

        # whole panels per thread (a panel shares one pass over each codebook block)
        panels = -(-num_rows // self.rows_per_panel)
        threads = max(1, min(torch.get_num_threads(), panels))
        if threads == 1:
            run(0, num_rows)
            return out
        per_thread = -(-panels // threads) * self.rows_per_panel
        starts = range(0, num_rows, per_thread)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda start: run(start, min(per_thread, num_rows - start)), starts))
        return out


def load_kernel(compiler: str | None = None, flags: tuple = COMPILE_FLAGS) -> FusedKernel:
    """The kernel for this process (built into the cache on the first call); raises ``KernelBuildError``."""
    key = (compiler, flags)
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = FusedKernel(build(compiler, flags))
        return _loaded[key]
