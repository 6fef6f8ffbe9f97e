"""The one quantizer contract: input and index checks, the codebook-writing method, the loss rule,
``codebook_size_for``, and codebook usage counted on the data's device."""

import pytest
import torch

import hf_vq
from hf_vq.quantizers import (
    FSQ,
    IBQ,
    LFQ,
    CodebookBehaviour,
    CodebookUsage,
    DeadCodeReinit,
    EMAUpdate,
    EntropyRegularization,
    KMeansInit,
    Quantizer,
    SimVQ,
    VectorQuantizer,
)
from hf_vq.quantizers import behaviours as behaviours_module
from hf_vq.quantizers import ibq as ibq_module
from hf_vq.quantizers import lfq as lfq_module
from hf_vq.quantizers import usage as usage_module

QUANTIZERS = {
    "vq": lambda: VectorQuantizer(4, 16, codebook_init="normal"),
    "vq_l2_ema_kmeans": lambda: VectorQuantizer(4, 16, l2_norm=True, behaviours=[KMeansInit(iters=2), EMAUpdate()]),
    "simvq": lambda: SimVQ(4, 16),
    "fsq": lambda: FSQ([3, 4, 5, 2]),
    "lfq": lambda: LFQ(4),
    "ibq": lambda: IBQ(4, 16, entropy_weight=0.1),
}


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_every_quantizer_checks_its_input(name):
    quantizer = QUANTIZERS[name]()
    assert isinstance(quantizer, Quantizer)
    with pytest.raises(ValueError, match=r"expects input \(\.\.\., 4\), channel-last.*permute"):
        quantizer(torch.randn(2, 4, 3, 3))  # channel-first
    with pytest.raises(ValueError, match="floating-point"):
        quantizer(torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        quantizer(torch.randn(0, 4))
    with pytest.raises(ValueError, match="torch.Tensor"):
        quantizer([[0.0] * 4])
    for bad in (float("nan"), float("inf"), -float("inf")):
        z = torch.randn(5, 4)
        z[2, 1] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            quantizer(z)


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_every_quantizer_checks_indices(name):
    quantizer = QUANTIZERS[name]()
    size = quantizer.codebook_size
    assert quantizer.indices_to_codes(torch.tensor([0, size - 1], dtype=torch.int32)).shape == (2, 4)
    with pytest.raises(ValueError, match="integer"):
        quantizer.indices_to_codes(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="integer"):
        quantizer.indices_to_codes(torch.tensor([True]))
    for bad in (-1, size):
        with pytest.raises(ValueError, match=rf"in \[0, {size}\); got values in \[{min(bad, 0)}, {max(bad, 0)}\]"):
            quantizer.indices_to_codes(torch.tensor([0, bad]))


def test_a_quantizer_must_implement_both_steps():
    class OnlyQuantize(Quantizer):
        def _quantize(self, vectors, with_losses):
            return vectors, vectors.new_zeros(len(vectors), dtype=torch.long), {}

    with pytest.raises(TypeError, match="_indices_to_codes"):
        OnlyQuantize()


def test_bad_sizes_are_errors():
    for bad in (0, -3):
        with pytest.raises(ValueError, match="codebook_size must be a positive integer"):
            VectorQuantizer(4, bad)
        with pytest.raises(ValueError, match="codebook_size must be a positive integer"):
            CodebookUsage(bad)
    with pytest.raises(ValueError, match="beta"):
        VectorQuantizer(4, 8, beta=-0.1)


# -- one codebook-writing method ------------------------------------------------------------

class Recorder(CodebookBehaviour):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_codebook_changed(self, vq, indices):
        self.calls.append(None if indices is None else indices.tolist())


def test_set_codes_writes_rows_and_tells_the_other_behaviours():
    recorder = Recorder()
    vq = VectorQuantizer(2, 4, behaviours=[EMAUpdate(decay=0.9), recorder])
    ema = vq.behaviours[0]
    ema.ema_count.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    vq.set_codes(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), indices=torch.tensor([1, 3]))
    assert vq.codebook[1].tolist() == [1.0, 2.0] and vq.codebook[3].tolist() == [3.0, 4.0]
    assert recorder.calls == [[1, 3]]
    # EMA's running mean of a written code becomes the code, with the weight it had
    torch.testing.assert_close(ema.ema_sum[[1, 3]], torch.tensor([[2.0, 4.0], [12.0, 16.0]]))
    vq.set_codes(torch.zeros(4, 2), source=recorder)  # the writer is not told about its own write
    assert recorder.calls == [[1, 3]]
    assert torch.equal(vq.codebook, torch.zeros(4, 2))


def test_kmeans_init_reaches_ema_through_the_quantizer():
    vq = VectorQuantizer(2, 2, behaviours=[KMeansInit(iters=3), EMAUpdate(decay=0.5)])
    points = torch.cat([torch.full((10, 2), 4.0), torch.full((10, 2), -4.0)])
    written = []
    set_codes = vq.set_codes
    vq.set_codes = lambda values, indices=None, source=None: (written.append(type(source).__name__),
                                                              set_codes(values, indices, source))[1]
    vq.train()
    vq(points)
    assert written == ["KMeansInit", "EMAUpdate"]
    # k-means found (4, 4) and (-4, -4); EMA then averaged those exact points: the codes stay put
    assert sorted(vq.codebook[:, 0].tolist()) == [-4.0, 4.0]


@pytest.mark.parametrize("behaviour", [lambda: EMAUpdate(), lambda: KMeansInit(iters=2),
                                       lambda: DeadCodeReinit(anchor="closest")])
def test_behaviours_change_the_codebook_only_through_set_codes(behaviour):
    vq = VectorQuantizer(3, 8, codebook_init="normal", behaviours=[behaviour()])
    before = vq.codebook.detach().clone()
    vq.set_codes = lambda values, indices=None, source=None: None  # a quantizer that refuses every write
    vq.train()
    vq(torch.randn(32, 3) * 5)
    assert torch.equal(vq.codebook, before)


def test_set_codes_refuses_non_finite_values():
    vq = VectorQuantizer(2, 3, codebook_init="normal", behaviours=[EMAUpdate()])
    before = vq.codebook.detach().clone()
    for bad in (float("nan"), float("inf")):
        values = torch.zeros(3, 2)
        values[1, 0] = bad
        with pytest.raises(ValueError, match="NaN or inf into the codebook"):
            vq.set_codes(values)
        assert torch.equal(vq.codebook, before)


def test_nan_batch_in_training_leaves_codebook_and_ema_state_unchanged():
    vq = VectorQuantizer(2, 3, codebook_init="normal", behaviours=[KMeansInit(iters=2), EMAUpdate(decay=0.9)])
    vq.train()
    vq(torch.randn(16, 2))
    state = {name: value.clone() for name, value in vq.state_dict().items()}
    z = torch.randn(16, 2)
    z[3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        vq(z)
    for name, value in vq.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_overflowing_statistics_never_reach_the_codebook():
    # Finite input whose EMA / k-means sums overflow float32: refused, state unchanged.
    huge = torch.full((4, 2), 3e38)
    vq = VectorQuantizer(2, 3, codebook_init="normal", behaviours=[EMAUpdate(decay=0.9)]).train()
    state = {name: value.clone() for name, value in vq.state_dict().items()}
    with pytest.raises(ValueError, match="from EMAUpdate"):
        vq(huge)
    for name, value in vq.state_dict().items():
        assert torch.equal(value, state[name]), name
    vq = VectorQuantizer(2, 1, codebook_init="normal", behaviours=[KMeansInit(iters=1)]).train()
    before = vq.codebook.detach().clone()
    with pytest.raises(ValueError, match="from KMeansInit"):
        vq(huge)
    assert torch.equal(vq.codebook, before) and not bool(vq.behaviours[0].initialised)


def test_uses_cosine_is_one_property():
    assert not VectorQuantizer(2, 3).uses_cosine
    assert VectorQuantizer(2, 3, distance="cosine").uses_cosine
    assert VectorQuantizer(2, 3, l2_norm=True).uses_cosine
    assert not SimVQ(2, 3).uses_cosine


def test_simvq_keeps_its_state_dict_keys_and_resets_its_frozen_codes():
    sim = SimVQ(4, 8)
    assert sorted(sim.state_dict()) == ["codebook_projection.bias", "codebook_projection.weight", "frozen_codebook"]
    assert sim.codebook is sim.frozen_codebook and not sim.frozen_codebook.requires_grad
    before = sim.frozen_codebook.clone()
    sim.reset_codebook()
    assert not torch.equal(before, sim.frozen_codebook)
    weight, bias = sim.codebook_projection.weight, sim.codebook_projection.bias
    torch.testing.assert_close(sim.codebook_table(), sim.frozen_codebook @ weight.t() + bias)
    assert sim.frozen_codebook.std().item() == pytest.approx(4**-0.5, rel=0.5)  # N(0, dim^-1/2)


# -- loss terms only when they can be used ----------------------------------------------------

def _refuse(*args, **kwargs):
    raise AssertionError("the entropy function ran")


@pytest.mark.parametrize("make", [
    lambda: VectorQuantizer(4, 16, behaviours=[EntropyRegularization(weight=0.1)]),
    lambda: LFQ(4, entropy_weight=0.1),
    lambda: IBQ(4, 16, entropy_weight=0.1),
])
def test_inference_pays_for_the_search_not_the_entropy(make, monkeypatch):
    quantizer = make()
    z = torch.randn(8, 4)
    monkeypatch.setattr(behaviours_module, "codebook_entropy_loss", _refuse)
    monkeypatch.setattr(lfq_module, "codebook_entropy_loss", _refuse)
    monkeypatch.setattr(ibq_module, "codebook_entropy_loss", _refuse)
    with torch.no_grad():
        out = quantizer.eval()(z)
    assert out.loss_terms == {} and out.loss.item() == 0.0
    assert out.indices.shape == (8,)
    # with gradients on (or in training) the same quantizer computes its terms, entropy included
    for training, grad in ((False, True), (True, False)):
        with torch.set_grad_enabled(grad), pytest.raises(AssertionError, match="entropy function ran"):
            quantizer.train(training)(z)
    monkeypatch.undo()
    out = quantizer.eval()(z)
    assert {"commitment", "entropy"} <= set(out.loss_terms)
    torch.testing.assert_close(out.loss, sum(out.loss_terms.values()))


def test_model_encode_at_inference_has_no_loss_terms():
    model = hf_vq.LFQVAEModel(hf_vq.LFQVAEConfig(codebook_dim=4, hidden_dim=16, image_size=16)).eval()
    with torch.no_grad():
        encoded = model.encode(torch.rand(1, 3, 16, 16) * 2 - 1)
    assert encoded.loss_terms == {} and encoded.quantizer_loss.item() == 0.0


# -- codebook_size in one place -----------------------------------------------------------------

def test_codebook_size_for():
    assert FSQ.codebook_size_for([8, 5, 5, 5]) == 1000 == FSQ([8, 5, 5, 5]).codebook_size
    assert LFQ.codebook_size_for(9) == 512 == LFQ(9).codebook_size
    for bad in ([], [1, 4], [8, 4.5], ["a"]):
        with pytest.raises(ValueError, match="levels must be a non-empty list of integers >= 2"):
            FSQ.codebook_size_for(bad)
    for bad in (0, 21, 2.0):
        with pytest.raises(ValueError, match=r"integer in \[1, 20\]"):
            LFQ.codebook_size_for(bad)


def test_configs_take_codebook_size_from_the_quantizer(monkeypatch):
    monkeypatch.setattr(FSQ, "codebook_size_for", staticmethod(lambda levels: 777))
    monkeypatch.setattr(LFQ, "codebook_size_for", staticmethod(lambda dim: 555))
    assert hf_vq.FSQVAEConfig(levels=[2, 2]).codebook_size == 777
    assert hf_vq.LFQVAEConfig(codebook_dim=3).codebook_size == 555


# -- usage counted on the data's device ---------------------------------------------------------

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_codebook_usage_counts_and_reduces_on_the_indices_device(device, monkeypatch):
    reduced = []
    monkeypatch.setattr(usage_module, "all_reduce_sum", lambda tensor: reduced.append(tensor) or tensor)
    usage = CodebookUsage(8)
    usage.update(torch.tensor([[0, 1], [1, 7]], device=device))
    assert usage.counts.device.type == device and usage.counts.dtype == torch.long
    result = usage.compute(all_reduce=True)
    assert len(reduced) == 1 and reduced[0].device.type == device
    assert reduced[0].dtype != torch.float64  # NCCL cannot reduce CPU float64; MPS has no float64
    assert result["num_tokens"] == 4 and result["codebook_usage"] == 3 / 8
    # a process that saw no indices still takes part in the reduction, with zeros
    assert CodebookUsage(8).compute(all_reduce=True)["num_tokens"] == 0 and len(reduced) == 2
    assert CodebookUsage(8, device=device).counts.device.type == device
