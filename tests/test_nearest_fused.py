"""The opt-in fused CPU search kernel (``hf_vq.quantizers.fused_search``, ``kernels/nearest_code.c``) against
independent references: hand-checkable ties, numpy's first argmin of exact integer scores (many ties, sizes that
are not multiples of any of the kernel's blocks: 16-row blocks, 4-code blocks, 64-code groups, 256-row panels,
4,096-code blocks), float64 brute force on random data, K = 1, N = 0; the row split across threads; the portable
(non-AVX) build; and the selection: unknown names, the environment variable, no compiler, a failing compiler, the
dimension limit. The kernel is compiled once per test session into a temporary cache."""

import os
import platform

import numpy as np
import pytest
import torch
from test_nearest_tiled import assert_hand_checkable_ties_pick_the_first_code, assert_nearest_up_to_ties, float64_distances

from hf_vq.quantizers import fused_search, max_inner_product, nearest_code
from hf_vq.quantizers import nearest as nearest_module


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory):
    """A temporary cache holding the session's one compile (the loaded library stays loaded in this process)."""
    try:
        fused_search._compiler()
    except fused_search.KernelBuildError:  # CI and the benchmark machine have gcc; this says why where not
        pytest.skip("no C compiler on this machine ($CC, cc, gcc): the fused kernel cannot be built")
    cache = str(tmp_path_factory.mktemp("hf_vq_cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_VQ_CACHE", cache)
        fused_search.load_kernel()
    return cache


@pytest.fixture
def fused(kernel_cache, monkeypatch):
    """The fused search for one test (restored to unset afterwards), with a count of the kernel's calls."""
    monkeypatch.setenv("HF_VQ_CACHE", kernel_cache)
    monkeypatch.setattr(nearest_module, "_cpu_search_kernel", "fused")  # as set_cpu_search_kernel("fused"), undone after
    calls = []
    kernel_call = fused_search.FusedKernel.first_argmin
    monkeypatch.setattr(fused_search.FusedKernel, "first_argmin",
                        lambda self, left, right: calls.append(left.shape) or kernel_call(self, left, right))
    return calls


def integer_case(num_vectors, num_codes, dim, seed):
    """Small integers: every score is an exact integer in float32, and many codes are duplicates."""
    generator = torch.Generator().manual_seed(seed)
    codebook = torch.randint(-2, 3, (num_codes, dim), generator=generator)
    vectors = torch.randint(-3, 4, (num_vectors, dim), generator=generator)
    return vectors, codebook


def test_hand_checkable_ties_pick_the_first_code(fused):
    assert_hand_checkable_ties_pick_the_first_code()  # nearest_code and max_inner_product on a line of codes
    assert len(fused) == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_vectors, num_codes, dim", [(37, 203, 8), (300, 4103, 3), (16, 64, 1)])
def test_exact_integer_scores_give_the_first_argmin(fused, dtype, num_vectors, num_codes, dim):
    vectors, codebook = integer_case(num_vectors, num_codes, dim, seed=num_codes)
    vectors[:5] = codebook[-1]  # on the last code, which the kernel pads with copies of itself
    distances = ((vectors[:, None] - codebook[None]) ** 2).sum(-1).numpy()
    products = (vectors @ codebook.t()).numpy()
    assert (distances == distances.min(1, keepdims=True)).sum(1).max() > 1  # there are ties to break
    np.testing.assert_array_equal(nearest_code(vectors.to(dtype), codebook.to(dtype)).numpy(), distances.argmin(1))
    np.testing.assert_array_equal(max_inner_product(vectors.to(dtype), codebook.to(dtype)).numpy(),
                                  products.argmax(1))
    assert len(fused) == 2


def test_random_case_matches_float64_brute_force(fused):
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(400, 8, generator=generator)
    codebook = torch.randn(1203, 8, generator=generator)
    codebook[1000:1100] = codebook[:100]  # exact duplicates in later groups
    vectors[:50] = codebook[:50]
    indices = nearest_code(vectors, codebook)
    # exact agreement wherever float64's best distance is ahead of the second by more than rounding
    assert_nearest_up_to_ties(indices, float64_distances(vectors, codebook))
    assert torch.equal(indices[:50], torch.arange(50))
    np.testing.assert_array_equal(nearest_code(vectors.double(), codebook.double()).numpy(),
                                  float64_distances(vectors, codebook).argmin(1))
    products = -(vectors.double().numpy() @ codebook.double().numpy().T)
    assert_nearest_up_to_ties(max_inner_product(vectors, codebook), products)
    assert len(fused) == 3


def test_one_code_no_vectors_and_all_nan_scores(fused):
    vectors = torch.randn(21, 4)
    assert nearest_code(vectors, torch.randn(1, 4)).tolist() == [0] * 21
    assert max_inner_product(vectors, torch.randn(1, 4)).tolist() == [0] * 21
    empty = nearest_code(torch.empty(0, 4), torch.randn(10, 4))
    assert empty.dtype == torch.long and empty.shape == (0,)
    # a row whose every score is NaN keeps index 0 (the C code's documented answer; no crash, no garbage)
    left = torch.tensor([[float("nan")], [1.0]])
    assert nearest_module._first_argmin_of_products(left, torch.tensor([[3.0, -1.0, 2.0]]), 100).tolist() == [0, 1]
    assert len(fused) == 4


def test_rows_split_across_threads_give_the_same_indices(fused):
    vectors, codebook = integer_case(1000, 517, 5, seed=4)  # four 256-row panels
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = nearest_code(vectors.float(), codebook.float())
        torch.set_num_threads(3)
        three = nearest_code(vectors.float(), codebook.float())
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, three)
    np.testing.assert_array_equal(one.numpy(), ((vectors[:, None] - codebook[None]) ** 2).sum(-1).argmin(1).numpy())


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="-mno-avx is an x86 flag")
def test_portable_build_without_avx_gives_the_same_indices(kernel_cache, monkeypatch):
    # without __AVX__ the lane minimum is the portable select, and 32-byte vectors are split by the compiler
    monkeypatch.setenv("HF_VQ_CACHE", kernel_cache)
    flags = ("-O2", "-mno-avx", "-ffp-contract=fast", "-std=gnu11", "-fPIC", "-shared")
    portable = fused_search.load_kernel(flags=flags)
    vectors, codebook = integer_case(70, 150, 8, seed=5)
    distances = ((vectors[:, None] - codebook[None]) ** 2).sum(-1).numpy()
    augmented_vectors = torch.cat([vectors, torch.ones(70, 1, dtype=vectors.dtype)], 1)
    augmented_codes = torch.cat([-2 * codebook, codebook.pow(2).sum(1, keepdim=True)], 1).t()
    for dtype in (torch.float32, torch.float64):
        indices = portable.first_argmin(augmented_vectors.to(dtype), augmented_codes.to(dtype))
        np.testing.assert_array_equal(indices.numpy(), distances.argmin(1))


def test_unknown_kernel_names_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="'tiled', 'fused'; got 'fast'"):
        nearest_module.set_cpu_search_kernel("fast")
    monkeypatch.setattr(nearest_module, "_cpu_search_kernel", None)
    monkeypatch.setenv("HF_VQ_CPU_SEARCH", "Fused")
    with pytest.raises(ValueError, match="HF_VQ_CPU_SEARCH must be one of"):
        nearest_code(torch.randn(3, 2), torch.randn(4, 2))


def test_environment_variable_selects_the_kernel_and_the_process_setting_wins(fused, monkeypatch):
    monkeypatch.setattr(nearest_module, "_cpu_search_kernel", None)
    monkeypatch.setenv("HF_VQ_CPU_SEARCH", "fused")
    nearest_code(torch.randn(3, 2), torch.randn(4, 2))
    assert len(fused) == 1
    monkeypatch.setattr(nearest_module, "_cpu_search_kernel", "tiled")
    nearest_code(torch.randn(3, 2), torch.randn(4, 2))
    monkeypatch.delenv("HF_VQ_CPU_SEARCH")
    monkeypatch.setattr(nearest_module, "_cpu_search_kernel", None)
    nearest_code(torch.randn(3, 2), torch.randn(4, 2))  # the default is "tiled"
    assert len(fused) == 1 and nearest_module.get_cpu_search_kernel() == "tiled"
    nearest_module.set_cpu_search_kernel("fused")  # loads the (cached) kernel; the fixture undoes the setting
    assert nearest_module.get_cpu_search_kernel() == "fused"


def test_dimension_limit_dtype_and_device_rules_run_the_tiled_path(fused, monkeypatch):
    monkeypatch.setattr(nearest_module, "FUSED_MAX_DIM", 8)
    nearest_code(torch.randn(5, 8), torch.randn(7, 8))  # inner dimension 9 > 8
    nearest_code(torch.randn(5, 7, dtype=torch.bfloat16), torch.randn(7, 7, dtype=torch.bfloat16))
    assert len(fused) == 0
    nearest_code(torch.randn(5, 7), torch.randn(7, 7))  # inner dimension 8
    assert len(fused) == 1


def test_missing_compiler_is_a_clear_error_not_a_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr(fused_search, "_loaded", {})
    monkeypatch.setattr(nearest_module, "_cpu_search_kernel", None)
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, no gcc
    with pytest.raises(fused_search.KernelBuildError, match="apt-get install gcc.*set_cpu_search_kernel\\('tiled'\\)"):
        nearest_module.set_cpu_search_kernel("fused")
    assert nearest_module.get_cpu_search_kernel() == "tiled"  # the failed request changed nothing
    monkeypatch.setenv("HF_VQ_CPU_SEARCH", "fused")  # asked for through the environment: the search raises
    with pytest.raises(fused_search.KernelBuildError, match="none was found"):
        nearest_code(torch.randn(3, 2), torch.randn(4, 2))


def test_failing_compiler_leaves_no_partial_library_and_the_cache_is_reused(kernel_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path))
    with pytest.raises(fused_search.KernelBuildError, match="Compiling the fused CPU search kernel failed"):
        fused_search.build(compiler="/bin/false")
    assert list((tmp_path / "kernels").iterdir()) == []
    monkeypatch.setenv("HF_VQ_CACHE", kernel_cache)
    path = fused_search.build()  # compiled by the session fixture: found, not rebuilt
    modified = path.stat().st_mtime_ns
    assert fused_search.build() == path and path.stat().st_mtime_ns == modified
    assert fused_search.library_path(fused_search._compiler(), ("-O1",)) != path  # other flags, another library


def cached_copy(kernel_cache, tmp_path, monkeypatch):
    """The session's library copied into a fresh cache (same name: found there, not rebuilt), owner-only modes."""
    path = fused_search.build()  # the session's (HF_VQ_CACHE is the session cache here)
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path))
    copy = fused_search.library_path(fused_search._compiler(), fused_search.COMPILE_FLAGS)
    assert copy.parent.parent == tmp_path
    copy.parent.mkdir(mode=0o700, parents=True)
    copy.write_bytes(path.read_bytes())
    copy.chmod(0o755)
    return path, copy


@pytest.mark.skipif(platform.system() == "Windows", reason="POSIX owners and modes")
def test_a_cached_library_others_could_change_is_refused_not_loaded(kernel_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", kernel_cache)
    original, copy = cached_copy(kernel_cache, tmp_path, monkeypatch)
    assert fused_search.build() == copy  # the copy is trusted as it is: found, loadable
    fused_search.FusedKernel(copy)
    for mode in (0o775, 0o757):
        copy.chmod(mode)
        with pytest.raises(fused_search.KernelBuildError, match=r"cached file .* writable by the group or by everyone"):
            fused_search.build()
        with pytest.raises(fused_search.KernelBuildError, match="Refusing to load"):
            fused_search.FusedKernel(copy)  # the loader checks too, not only the cache lookup
    assert copy.read_bytes() == original.read_bytes()  # refused, not rebuilt over
    copy.chmod(0o755)
    copy.parent.chmod(0o777)
    with pytest.raises(fused_search.KernelBuildError, match=r"cached folder .* writable by the group or by everyone"):
        fused_search.build()
    copy.parent.chmod(0o700)
    monkeypatch.setattr(fused_search, "_trusted_owners", lambda: {copy.stat().st_uid + 1})
    with pytest.raises(fused_search.KernelBuildError, match=f"belongs to another user \\(uid {copy.stat().st_uid}\\)"):
        fused_search.build()


@pytest.mark.skipif(platform.system() == "Windows", reason="POSIX links and modes")
def test_a_link_in_place_of_the_cached_library_is_refused(kernel_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", kernel_cache)
    _, copy = cached_copy(kernel_cache, tmp_path, monkeypatch)
    target = tmp_path / "elsewhere.so"
    copy.rename(target)
    copy.symlink_to(target)
    with pytest.raises(fused_search.KernelBuildError, match="is not a regular file"):
        fused_search.build()


@pytest.mark.skipif(platform.system() == "Windows", reason="POSIX umask")
def test_a_fresh_build_is_writable_only_by_its_owner_whatever_the_umask(kernel_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path))
    previous = os.umask(0o002)  # a umask that leaves new files group-writable
    try:
        path = fused_search.build()
    finally:
        os.umask(previous)
    assert not path.stat().st_mode & 0o022 and not path.parent.stat().st_mode & 0o022
    fused_search.check_trusted(path)  # our own build passes our own check
