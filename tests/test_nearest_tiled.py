"""The tiled nearest-code search (codes x vectors tiles reduced to group minima, the winning
group's scores computed again) against float64 brute force: a hand-checkable case with exact
ties, integer data with many exact ties, a random case, l2/cosine modes and the IBQ
inner-product search. Small tiles are patched in so every path (several row blocks and code
tiles, a narrower last tile, a codebook padded to whole groups, a group wider than a tile's
request) runs, and a subprocess checks that the default search stays far below a vectors x
codes matrix in memory."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from hf_vq.quantizers import VectorQuantizer, max_inner_product, nearest_code
from hf_vq.quantizers import nearest as nearest_module


@pytest.fixture(params=[(48, 150, 64), (32, 96, 32), (256, 2048, 64), (100, 40, 64), "accelerator"],
                ids=["small-tiles", "three-groups-a-tile", "default", "one-group-a-tile", "accelerator-layout"])
def tiles(request, monkeypatch):
    if request.param == "accelerator":  # the whole-codebook chunks used off CPU, run here on CPU
        monkeypatch.setattr(nearest_module, "_cache_tiles", lambda device: False)
        return request.param
    rows, codes, group = request.param
    monkeypatch.setattr(nearest_module, "WORKERS_MIN_PRODUCT", 0)  # these small cases too run in the row workers
    monkeypatch.setattr(nearest_module, "TILE_ROWS", rows)
    monkeypatch.setattr(nearest_module, "TILE_CODES", codes)
    monkeypatch.setattr(nearest_module, "GROUP", group)
    return request.param


def test_hand_checkable_ties_pick_the_first_code(tiles):
    assert_hand_checkable_ties_pick_the_first_code()


def assert_hand_checkable_ties_pick_the_first_code():
    # Codes 0, 1, ..., 299 on a line; the vector k + 0.5 is exactly as far from k as from k + 1
    # (every score is an integer, exact in float32), so the answer is k. The vector k + 0.25 is k.
    # Code 7 is repeated at index 290 (another tile with small tiles): 7.1 must give 7, not 290.
    codebook = torch.arange(300, dtype=torch.float32)[:, None].clone()
    codebook[290] = 7.0
    ks = torch.tensor([0, 3, 63, 64, 127, 128, 149, 150, 200, 288])
    vectors = torch.cat([ks + 0.5, ks + 0.25, torch.tensor([7.1, -5.0, 1000.0])])[:, None]
    expected = torch.cat([ks, ks, torch.tensor([7, 0, 299])])
    assert torch.equal(nearest_code(vectors, codebook), expected)
    # the same through the inner-product search: argmax of v.c for v = +-1 is the largest / smallest code
    signs = torch.tensor([[1.0], [-1.0]])
    assert max_inner_product(signs, codebook).tolist() == [299, 0]


def float64_distances(vectors, codebook):
    v, c = vectors.double().numpy(), codebook.double().numpy()
    return (v * v).sum(1)[:, None] - 2 * v @ c.T + (c * c).sum(1)[None]


def assert_nearest_up_to_ties(indices, distances, tolerance=1e-4):
    """Each chosen code is at the float64 minimum distance up to rounding; where the minimum is
    unique by more than the tolerance the index is the float64 argmin itself."""
    indices = indices.numpy()
    rows = np.arange(len(indices))
    best = distances.min(1)
    chosen = distances[rows, indices]
    assert np.all(chosen - best <= tolerance * np.maximum(1.0, np.abs(best)))
    sorted_distances = np.sort(distances, axis=1)
    unique = sorted_distances[:, 1] - sorted_distances[:, 0] > tolerance * np.maximum(1.0, np.abs(best))
    assert unique.mean() > 0.7  # the check below is not vacuous
    np.testing.assert_array_equal(indices[unique], distances.argmin(1)[unique])


def test_random_case_matches_float64_brute_force(tiles):
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(400, 8, generator=generator)
    codebook = torch.randn(1200, 8, generator=generator)
    codebook[1000:1100] = codebook[:100]  # exact duplicates: ties across tiles
    vectors[:50] = codebook[:50]  # vectors sitting on a duplicated code
    indices = nearest_code(vectors, codebook)
    assert_nearest_up_to_ties(indices, float64_distances(vectors, codebook))
    assert torch.equal(indices[:50], torch.arange(50))  # the first of the two equal codes
    # float64 inputs give exactly the float64 brute-force argmin (first on ties)
    indices64 = nearest_code(vectors.double(), codebook.double())
    np.testing.assert_array_equal(indices64.numpy(), float64_distances(vectors, codebook).argmin(1))


@pytest.mark.parametrize("mode", ["l2_norm", "cosine"])
def test_l2_and_cosine_search_match_float64_brute_force(tiles, mode):
    torch.manual_seed(1)
    vq = VectorQuantizer(8, 1000, l2_norm=mode == "l2_norm", distance="cosine" if mode == "cosine" else "euclidean",
                         codebook_init="normal").eval()
    z = torch.randn(300, 8) * 3
    with torch.no_grad():
        indices = vq(z).indices
    zn = torch.nn.functional.normalize(z.double(), dim=-1)
    cn = torch.nn.functional.normalize(vq.codebook.detach().double(), dim=-1)
    assert_nearest_up_to_ties(indices, float64_distances(zn, cn), tolerance=1e-5)


def test_inner_product_search_matches_float64_brute_force(tiles):
    generator = torch.Generator().manual_seed(2)
    vectors, codebook = torch.randn(300, 6, generator=generator), torch.randn(1000, 6, generator=generator)
    negated_products = -(vectors.double().numpy() @ codebook.double().numpy().T)
    assert_nearest_up_to_ties(max_inner_product(vectors, codebook), negated_products)


def test_exact_ties_everywhere_pick_the_first_code(tiles):
    # Small integer codes and vectors: every score is an exact integer in float32, and with 40 x 40
    # possible codes many of the 700 are duplicates (inside a group, across groups and tiles, and
    # the last code repeated in the padding). The answer must be numpy's first argmin of the exact
    # integer distances.
    generator = torch.Generator().manual_seed(3)
    codebook = torch.randint(-20, 20, (700, 2), generator=generator)
    vectors = torch.randint(-25, 25, (333, 2), generator=generator)
    vectors[:20] = codebook[-1]  # sits on the last code (and on its padding copies)
    distances = ((vectors[:, None].long() - codebook[None].long()) ** 2).sum(-1).numpy()
    expected = distances.argmin(1)
    assert (distances == distances.min(1, keepdims=True)).sum(1).max() > 1  # there are ties to break
    np.testing.assert_array_equal(nearest_code(vectors.float(), codebook.float()).numpy(), expected)


@pytest.mark.parametrize(
    "num_vectors, dim, max_elements, limit_mib",
    [(4_096, 8, None, 64),  # the default bound: a full float32 score matrix would be 1,562 MiB
     (2_048, 16, 2**22, 100)],  # k-means' assignment step with 100,000 codes: 781 MiB
)
def test_100k_code_search_memory_stays_far_below_a_vectors_x_codes_matrix(num_vectors, dim, max_elements, limit_mib):
    """Vectors against 100,000 codes: the process's peak memory must grow by far less than the
    vectors x codes float32 score matrix."""
    bound = "" if max_elements is None else f", max_elements={max_elements}"
    script = textwrap.dedent(
        f"""
        import resource, torch
        torch.set_num_threads(1)
        from hf_vq.quantizers import nearest_code
        vectors, codes = torch.randn({num_vectors}, {dim}), torch.randn(100_000, {dim})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        indices = nearest_code(vectors, codes{bound})
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        check = torch.cdist(vectors[:64].double(), codes.double()).argmin(1)
        assert torch.equal(indices[:64], check), "wrong nearest codes"
        print((after - before) // 1024)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True)
    grown_mib = int(out.stdout.strip().splitlines()[-1])
    full_matrix_mib = num_vectors * 100_000 * 4 // 2**20
    assert grown_mib < limit_mib < full_matrix_mib, (grown_mib, full_matrix_mib)
