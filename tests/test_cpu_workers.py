"""``hf_vq.utils.cpu_workers``: how rows are split, that the workers run torch on one thread each while the caller
and new threads keep the caller's setting, that a call from a worker runs in place, that the workers take the
caller's grad and inference mode, and that a forked child (a DataLoader worker) searches with its own workers
instead of waiting on its parent's dead threads."""

import multiprocessing
import threading

import pytest
import torch

from hf_vq.quantizers import nearest as nearest_module
from hf_vq.quantizers import nearest_code
from hf_vq.utils import cpu_workers


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def record(start, count):
    return start, count, threading.current_thread().name, torch.get_num_threads()


def thread_count_of_a_new_thread():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_rows_are_split_in_aligned_parts_run_by_single_threaded_workers(two_threads):
    # 10 rows in blocks of 3: 4 blocks, 2 parts of 2 blocks -> rows 0-5 and 6-9
    parts = cpu_workers.run_row_parts(10, 3, record)
    assert [(start, count) for start, count, _, _ in parts] == [(0, 6), (6, 4)]
    assert all(name.startswith("hf_vq_rows") for _, _, name, _ in parts)
    assert [threads for _, _, _, threads in parts] == [1, 1]
    assert torch.get_num_threads() == 2  # the caller's setting is untouched
    assert thread_count_of_a_new_thread() == 2  # and so is the one new threads start with


def test_one_thread_or_one_block_runs_in_the_caller(two_threads):
    caller = threading.current_thread().name
    assert cpu_workers.run_row_parts(3, 3, record) == [(0, 3, caller, 2)]  # one block
    torch.set_num_threads(1)
    assert cpu_workers.run_row_parts(10, 3, record) == [(0, 10, caller, 1)]


def test_a_call_from_a_worker_runs_in_that_worker(two_threads):
    nested = cpu_workers.run_row_parts(4, 1, lambda start, count: cpu_workers.run_row_parts(5, 1, record))
    assert len(nested) == 2  # two outer parts, each ran its inner call whole, in place, single-threaded
    for (inner,) in nested:
        assert inner[:2] == (0, 5) and inner[2].startswith("hf_vq_rows") and inner[3] == 1


def test_workers_run_in_the_callers_grad_and_inference_mode(two_threads, monkeypatch):
    def modes(start, count):
        return torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    assert cpu_workers.run_row_parts(4, 1, modes) == [(True, False)] * 2
    with torch.no_grad():
        assert cpu_workers.run_row_parts(4, 1, modes) == [(False, False)] * 2
    with torch.inference_mode():
        assert cpu_workers.run_row_parts(4, 1, modes) == [(False, True)] * 2
    monkeypatch.setattr(nearest_module, "TILE_ROWS", 16)  # several blocks: the workers write the caller's output
    monkeypatch.setattr(nearest_module, "WORKERS_MIN_PRODUCT", 0)
    vectors, codebook = torch.randn(100, 4), torch.randn(300, 4)
    expected = nearest_code(vectors, codebook)
    with torch.inference_mode():
        assert torch.equal(nearest_code(vectors, codebook), expected)


def search_in_child(queue, vectors, codebook):
    torch.set_num_threads(2)  # (the fork kept the parent's patched tile and threshold settings)
    queue.put(nearest_code(vectors, codebook).tolist())  # a list: no shared-memory handle outliving the child


def test_a_forked_child_searches_with_its_own_workers(two_threads, monkeypatch):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    monkeypatch.setattr(nearest_module, "TILE_ROWS", 16)  # several blocks of rows: the workers run
    monkeypatch.setattr(nearest_module, "WORKERS_MIN_PRODUCT", 0)
    vectors, codebook = torch.randn(100, 4), torch.randn(300, 4)
    expected = nearest_code(vectors, codebook)  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=search_in_child, args=(queue, vectors, codebook))
    child.start()
    try:
        found = queue.get(timeout=30)  # a child stuck on its parent's dead worker threads never answers
    finally:
        child.join(timeout=5)
        if child.is_alive():
            child.kill()
    assert found == expected.tolist()


def test_only_searches_of_at_least_workers_min_product_use_the_workers(two_threads, monkeypatch):
    calls = []
    monkeypatch.setattr(nearest_module, "run_row_parts", lambda num_rows, align, function: calls.append(num_rows)
                        or cpu_workers.run_row_parts(num_rows, align, function))
    vectors, codebook = torch.randn(100, 4), torch.randn(300, 4)  # 100 x 320 padded codes x 5 = 160,000
    expected = nearest_code(vectors, codebook)
    monkeypatch.setattr(nearest_module, "WORKERS_MIN_PRODUCT", 160_001)
    assert torch.equal(nearest_code(vectors, codebook), expected) and calls == []
    monkeypatch.setattr(nearest_module, "WORKERS_MIN_PRODUCT", 160_000)
    assert torch.equal(nearest_code(vectors, codebook), expected) and calls == [100]
