import os

import pytest
import torch

# Tests run offline: no hub downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps process-wide state (e.g. mixed precision); a test that runs the engine starts and ends with
    none (test modules use it through ``pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")``)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
