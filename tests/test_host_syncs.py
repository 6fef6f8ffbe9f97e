"""Host syncs per model call and per training step, counted on the CPU.

A host read of a device tensor (``.item()``, ``.tolist()``, ``bool(t)``...) makes the CPU wait for
the GPU, which then idles while the CPU queues the next kernels. On an H100 the eager batch-8
encode ran 4-8% slower than the official code (two reads per call: the pixel check and the
quantizer's latent check) and ``hf-vq train-ar``'s step 0.81x a plain loop (two reads per step:
the GPT's token and label checks, and the engine's NaN check). ``count_host_syncs`` counts the
reads on any device, so these bounds hold on a CPU-only CI:

- a tokenizer's ``encode`` / ``forward`` / ``decode_indices`` and the GPT's ``forward``: at most 1,
  the one read of the call's value checks (pixel range and NaN, latents, index and label ranges),
  which eager calls keep; ``decode`` (of latents) 0; ``generate``: 2 whatever the length (the class
  labels before sampling, every step's token check at the end), not one per token;
- an engine step that neither logs nor checkpoints: 0 (losses, NaN checks and value checks stay
  on the device until the next logging step); a logging step: 1 for the GPT, 3 for the tokenizer
  objective (the losses and checks, the codebook usage, the unreadable-image count).
"""

import contextlib
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from PIL import Image
from test_titok_ar import TINY as TINY_TITOK
from test_trainer import tiny_raw
from test_vqgan import tiny_config as tiny_vqgan_config

import hf_vq
from hf_vq.generation import generate
from hf_vq.models.llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel
from hf_vq.quantizers import DeadCodeReinit, EMAUpdate, KMeansInit, NormalizedEMAUpdate, VectorQuantizer
from hf_vq.quantizers import base as quantizer_base
from hf_vq.quantizers.projected_codebook import ProjectedCodebookQuantizer
from hf_vq.training import ARTrainConfig, NextTokenObjective, NonFiniteLossError, TrainConfig, TrainingEngine
from hf_vq.training.tokenizer_objective import TokenizerObjective
from hf_vq.utils.host_syncs import count_host_syncs
from hf_vq.utils.value_checks import queued_value_checks

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


# -- the counter is not blind ---------------------------------------------------------------
READS = {
    "item": lambda t: t[0].item(), "float": lambda t: float(t[0]), "int": lambda t: int(t[0]),
    "bool": lambda t: bool(t[0] > 0), "if any": lambda t: 1 if (t > 0).any() else 0, "tolist": lambda t: t.tolist(),
    "numpy": lambda t: t.numpy(), "cpu": lambda t: t.cpu(), "equal": lambda t: torch.equal(t, t),
    "allclose": lambda t: torch.allclose(t, t), "mask": lambda t: t[t > 0], "nonzero": lambda t: t.nonzero(),
    "unique": lambda t: torch.unique(t), "bincount": lambda t: torch.bincount((t > 0).long()),
    "f-string": lambda t: f"{t[0]:.3f}",
}


@pytest.mark.parametrize("name", sorted(READS))
def test_the_counter_counts_each_kind_of_host_read_once(name):
    values = torch.randn(5)
    with count_host_syncs() as syncs:
        READS[name](values)
    assert syncs.count == 1, syncs.report()
    assert "test_host_syncs.py" in syncs.events[0][1]  # it names the line that read


def test_the_counter_counts_nothing_for_device_side_work_and_restores_the_tensor_methods():
    values, methods = torch.randn(5, requires_grad=True), (torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu)
    optimizer = torch.optim.Adam([values])  # its step counter is a CPU tensor it reads: not a device sync
    with count_host_syncs() as syncs:
        (values.exp() * 2).sum().backward()
        torch.where(values > 0, values, 0).clamp(-1, 1).argmax()
        optimizer.step()
    assert syncs.count == 0, syncs.report()
    with count_host_syncs() as syncs:
        values.detach()[0].item()
    assert syncs.count == 1
    assert (torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu) == methods


# -- model calls ----------------------------------------------------------------------------
def tokenizer(name):
    torch.manual_seed(0)
    if name == "llamagen_vq":
        return hf_vq.LlamaGenVQModel(hf_vq.LlamaGenVQConfig(image_size=16, base_channels=32, channel_multipliers=[1, 1],
                                                            num_res_blocks=1, z_channels=32, codebook_size=64))
    if name == "vqgan":
        return hf_vq.VQGANModel(tiny_vqgan_config(image_size=16, attn_resolutions=[16]))
    if name == "vqgan_lc":  # the projected codebook: searched and looked up through the trained projector
        return hf_vq.VQGANLCModel(hf_vq.VQGANLCConfig(image_size=16, base_channels=32, channel_multipliers=[1, 2],
                                                      z_channels=32, attn_resolutions=[8], codebook_size=64,
                                                      codebook_feature_dim=12, codebook_dim=4))
    if name == "cvq_vae":  # dead-code anchors (from a pool: more features per batch than codes, never read)
        return hf_vq.CVQVAEModel(hf_vq.CVQVAEConfig(image_size=16, hidden_dim=16, codebook_size=16, codebook_dim=8,
                                                    anchor="random"))
    return hf_vq.TiTokModel(hf_vq.TiTokConfig(**TINY_TITOK))


def tiny_gpt(vocab_size=32, num_classes=10):
    torch.manual_seed(0)
    return LlamaGenGPTModel(LlamaGenGPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                              vocab_size=vocab_size, block_size=16, num_classes=num_classes,
                                              multiple_of=16))


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", ["llamagen_vq", "vqgan", "titok", "vqgan_lc", "cvq_vae"])
def test_a_tokenizer_call_reads_the_device_at_most_once(name, training):
    model = tokenizer(name).train(training)
    size = model.config.image_size
    pixel_values = torch.rand(2, 3, size, size) * 2 - 1
    with torch.set_grad_enabled(training):
        encoded = model.encode(pixel_values)
        calls = {"encode": (lambda: model.encode(pixel_values), 1), "forward": (lambda: model(pixel_values), 1),
                 "decode_indices": (lambda: model.decode_indices(encoded.indices), 1),
                 "decode": (lambda: model.decode(encoded.quantized), 0)}
        for op, (call, most) in calls.items():
            with count_host_syncs() as syncs:
                call()
            assert syncs.count <= most, f"{op}: {syncs.report()}"


def test_gpt_forward_reads_once_and_generate_twice_whatever_the_length():
    gpt = tiny_gpt()
    ids, labels = torch.randint(0, 32, (2, 16)), torch.tensor([3, 7])
    with count_host_syncs() as syncs:
        gpt.train()(input_ids=ids[:, :-1], class_labels=labels, labels=ids).loss.backward()
    assert syncs.count <= 1, syncs.report()
    gpt.eval()
    for num_tokens in (4, 16):
        with torch.no_grad(), count_host_syncs() as syncs:
            tokens = generate(gpt, [3, 7], num_tokens=num_tokens, guidance_scale=2.0, top_k=5, top_p=0.9)
        assert tokens.shape == (2, num_tokens) and syncs.count <= 2, syncs.report()


def test_queued_checks_still_refuse_bad_values_with_their_own_errors():
    model = tokenizer("llamagen_vq")
    with pytest.raises(ValueError, match=r"pixel_values contain NaN"):
        model(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 64\); got values in \[0, 70\]"):
        model.decode_indices(torch.tensor([[[0, 70], [1, 2]]]))
    gpt = tiny_gpt()
    # the token lookup must not fail first (an IndexError on a CPU, a device assert on a GPU)
    with pytest.raises(ValueError, match=r"input_ids must be codes in \[0, 32\).*\[0, 99\]"):
        gpt(input_ids=torch.tensor([[0, 99, 3]]), class_labels=torch.tensor([1]))
    # nor the loss's target lookup (the last token is a target only); -100 stays "ignored"
    with pytest.raises(ValueError, match=r"labels must be codes in \[0, 32\) or -100 \(ignored\); got .*\[0, 40\]"):
        gpt(input_ids=torch.tensor([[0, 1, 3]]), class_labels=torch.tensor([1]), labels=torch.tensor([[0, 1, -100, 40]]))
    with pytest.raises(ValueError, match=r"class_labels must be in \[0, 10\].*\[-1, 2\]"):
        gpt(input_ids=torch.tensor([[0, 1, 3]]), class_labels=torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"class_labels must be in \[0, 10\); got values in \[3, 12\]"):
        generate(gpt.eval(), [3, 12], num_tokens=2)


# -- engine steps ---------------------------------------------------------------------------
class _Prepend:
    def __init__(self, first, rest):
        self.first, self.rest = first, rest

    def __iter__(self):
        return self

    def __next__(self):
        if self.first is not None:
            first, self.first = self.first, None
            return first
        return next(self.rest)


class CountingEngine(TrainingEngine):
    """Counts the host reads of each step (step, log, checkpoint); the batch is fetched before the
    count: the loader's tensors are host tensors on a GPU too."""

    def train_step(self, step, progress):
        self.batches = _Prepend(next(self.batches), self.batches)
        with count_host_syncs() as syncs:
            super().train_step(step, progress)
        self.syncs = getattr(self, "syncs", {}) | {step: syncs}


def token_dataset(rows=40, vocab_size=32, length=16):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (rows, length), generator=generator)
    return Dataset.from_dict({"input_ids": ids.tolist(), "class_labels": [i % 3 for i in range(rows)]})


def ar_engine(workdir: Path, model=None, **training) -> CountingEngine:
    config = ARTrainConfig.from_dict({
        "output_dir": str(workdir / "ar"), "seed": 0, "model": {},
        "training": {"batch_size": 4, "max_steps": 5, "log_every": 3, "report_to": "none", "max_grad_norm": 1.0,
                     "lr_scheduler": "cosine", "warmup_steps": 2, **training}})
    model = model if model is not None else tiny_gpt(num_classes=3)
    return CountingEngine(NextTokenObjective(config, model=model, tokens=token_dataset()), config.training,
                          output_dir=config.output_dir, seed=0, config=config.to_dict())


def test_train_ar_steps_between_logging_steps_never_read_the_device(tmp_path):
    engine = ar_engine(tmp_path, ema_decay=0.99)
    engine.run()
    counts = {step: syncs.count for step, syncs in engine.syncs.items()}
    assert counts[1] == counts[2] == 0, {step: engine.syncs[step].report() for step in (1, 2)}
    assert counts[0] <= 1 and counts[3] <= 1 and counts[4] <= 1, counts  # logging steps: one read
    assert [entry["step"] for entry in engine.history] == [0, 3, 4]


def assert_no_reads_between_logging_steps(objective, config) -> CountingEngine:
    """Run 4 steps logging at 0 and 3: steps 1 and 2 must read nothing, the logging steps at most 3 times."""
    engine = CountingEngine(objective, config.training, output_dir=config.output_dir, seed=0, config=config.to_dict())
    engine.run()
    counts = {step: syncs.count for step, syncs in engine.syncs.items()}
    assert counts[1] == counts[2] == 0, {step: engine.syncs[step].report() for step in (1, 2)}
    assert max(counts[0], counts[3]) <= 3, counts
    return engine


def test_tokenizer_training_steps_between_logging_steps_never_read_the_device(tmp_path):
    # GAN from step 1 (adaptive weight, LeCam, DiffAugment), EMA of the weights; LPIPS is left out only for speed
    # (a plain network call, as the discriminator's).
    raw = tiny_raw(tmp_path, data={"max_eval_images": 4},
                   training={"max_steps": 4, "log_every": 3, "report_to": "none", "ema_decay": 0.99},
                   loss={"disc_weight": 0.8, "disc_start": 1, "disc_layers": 2, "disc_channels": 8,
                         "lecam_weight": 0.1, "disc_augment": ["color", "translation", "cutout"]})
    config = TrainConfig.from_dict(raw)
    engine = assert_no_reads_between_logging_steps(TokenizerObjective(config), config)
    assert {"discriminator", "lecam", "adversarial_weight"} <= set(engine.history[-1])


def test_a_nan_loss_between_logging_steps_stops_the_run_at_the_next_read_naming_its_step(tmp_path):
    model, calls = tiny_gpt(num_classes=3), []

    def nan_at_step_1(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) == 2 else output

    model.lm_head.register_forward_hook(nan_at_step_1)
    engine = ar_engine(tmp_path, model=model, max_steps=6, log_every=5, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match=r"Non-finite loss at step 1: loss=nan.*no checkpoint was written"):
        engine.run()
    # read at the checkpoint after step 1, before it was written; step 2 never ran
    assert not (tmp_path / "ar" / "checkpoints" / "checkpoint-00000002").exists()
    assert len(calls) == 2


def test_logged_values_are_the_step_s_own(tmp_path):
    # The history is read at logging steps in one host read: it must still hold each logged step's loss.
    losses = {}

    class Recording(CountingEngine):
        def step(self, step):
            terms = super().step(step)
            losses[step] = float(terms["loss"].detach())
            return terms

    engine = ar_engine(tmp_path)
    engine.__class__ = Recording
    engine.run()
    assert {entry["step"]: entry["loss"] for entry in engine.history} == {step: losses[step] for step in (0, 3, 4)}


# -- the token data path --------------------------------------------------------------------
def test_token_batches_read_with_one_gather_equal_the_rows_collated_one_by_one():
    from hf_vq.training.dataloaders import TokenBatchReader, collate_tokens

    dataset = token_dataset(rows=30).select(range(29, 2, -1))  # an index mapping, as .select/.shuffle leave
    rows = dataset.with_format("torch")
    indices = [4, 0, 17, 9]
    batch = TokenBatchReader(dataset).__getitems__(indices)
    expected = collate_tokens([rows[i] for i in indices])
    assert batch["input_ids"].dtype == batch["class_labels"].dtype == torch.long
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["class_labels"], expected["class_labels"])
    # rows of other lengths take the row-by-row path (and its error), as before
    ragged = Dataset.from_dict({"input_ids": [[1, 2, 3], [4, 5]], "class_labels": [0, 1]})
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        TokenBatchReader(ragged).__getitems__([0, 1])


def test_a_large_log_every_still_reads_the_losses_after_max_unread_losses(tmp_path, monkeypatch):
    from hf_vq.training import engine as engine_module

    monkeypatch.setattr(engine_module, "MAX_UNREAD_LOSSES", 1)
    model, calls = tiny_gpt(num_classes=3), []

    def nan_at_step_1(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) == 2 else output

    model.lm_head.register_forward_hook(nan_at_step_1)
    with pytest.raises(NonFiniteLossError, match=r"Non-finite loss at step 1: loss=nan"):
        ar_engine(tmp_path, model=model, max_steps=6, log_every=50).run()
    assert len(calls) == 2  # read right after step 1 (one unread loss), not at the next logging step


# -- codebook behaviours (EMA, k-means init, CVQ anchors), the projected codebook -----------
# They update state from the call's input. They used to read the input's checks first, then the
# codebook's finiteness: 2 reads per training call, 3 with k-means init (its flag, every call).
# Now a bad batch's update is skipped on the device (value_checks.queued_checks_passed) and every
# check is read once, at the end of the call.
QUANTIZERS = {
    "ema": lambda: VectorQuantizer(8, 16, codebook_dim=4, behaviours=[EMAUpdate(count_init=0.0)]),
    "normalized_ema": lambda: VectorQuantizer(8, 16, l2_norm=True, behaviours=[NormalizedEMAUpdate()]),
    "kmeans_ema": lambda: VectorQuantizer(8, 16, behaviours=[KMeansInit(iters=3), EMAUpdate()]),
    "cvq_closest": lambda: VectorQuantizer(8, 16, distance="cosine", behaviours=[DeadCodeReinit("closest", chunk_codes=5)]),
    "cvq_probabilistic": lambda: VectorQuantizer(8, 16, behaviours=[DeadCodeReinit("probabilistic")]),
    # 40 pool rows, batches of 12 and 17 vectors: the pool fills over 3 calls, then rows are overwritten at random
    "cvq_random": lambda: VectorQuantizer(8, 40, behaviours=[DeadCodeReinit("random")]),
    "projected": lambda: ProjectedCodebookQuantizer(8, 16, feature_dim=12),  # VQGAN-LC's
}
# One read per call (the input's and the codebook's checks together), but: k-means init reads its flag
# until it reads True (the init call, then the next); the random pool reads its fill count until read full.
EXPECTED_READS = {"kmeans_ema": [2, 2, 1, 1, 1, 1], "cvq_random": [2, 2, 2, 2, 1, 1]}


def train_quantizer(name, steps=6):
    torch.manual_seed(0)
    quantizer = QUANTIZERS[name]().train()
    trained = [p for p in quantizer.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trained, lr=0.1) if trained else None
    outputs, reads = [], []
    for step in range(steps):
        z = torch.randn(12 + 5 * (step % 2), 8, requires_grad=True)
        with count_host_syncs() as syncs:
            out = quantizer(z)
            (out.loss + out.quantized.pow(2).mean()).backward()
        reads.append(syncs.count)
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad()
        outputs.append((out.indices, out.quantized.detach()))
    return quantizer, outputs, reads


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_a_training_call_of_a_codebook_behaviour_reads_once(name):
    _, _, reads = train_quantizer(name)
    assert reads == EXPECTED_READS.get(name, [1] * 6)


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_codebook_updates_are_those_of_checks_read_at_once(name, monkeypatch):
    # The reference: every check read (and raised) where it is made, so no update is ever written through
    # torch.where; same seeds, same batches: same indices, outputs and state after six steps, bit for bit.
    queued, queued_outputs, queued_reads = train_quantizer(name)
    monkeypatch.setattr(quantizer_base, "queued_value_checks", contextlib.nullcontext)
    at_once, at_once_outputs, at_once_reads = train_quantizer(name)
    if name != "projected":  # the patch took: the input check and set_codes read one by one
        assert sum(at_once_reads) > sum(queued_reads)
    for (indices, quantized), (ref_indices, ref_quantized) in zip(queued_outputs, at_once_outputs):
        assert torch.equal(indices, ref_indices) and torch.equal(quantized, ref_quantized)
    reference = at_once.state_dict()
    for key, value in queued.state_dict().items():
        assert torch.equal(value, reference[key]), key


def _tokenizer_state(model) -> dict:
    return {name: value.clone() for name, value in model.quantizer.state_dict().items()}


@pytest.mark.parametrize("model_type", ["vqvae", "cvq_vae"])
def test_a_bad_batch_changes_no_codebook_state_and_raises_its_own_error_at_the_read(model_type):
    # The pixel range check is read at the end of the call now, after the behaviours ran: their updates
    # must have been skipped on the device. Here three calls inside one queued block (as the engine's
    # steps between two reads): the bad second batch and every update after it are skipped.
    torch.manual_seed(0)
    common = {"image_size": 8, "hidden_dim": 8, "num_res_blocks": 1, "codebook_size": 16, "codebook_dim": 4}
    if model_type == "vqvae":
        model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(**common, use_ema=True, kmeans_init=True, kmeans_iters=2))
    else:
        model = hf_vq.CVQVAEModel(hf_vq.CVQVAEConfig(**common, anchor="random"))
    model.train()
    good = torch.rand(2, 3, 8, 8) * 2 - 1
    for bad, error in ((good * 127.5 + 127.5, r"pixel_values must be in \[-1, 1\]"),
                       (torch.full_like(good, float("nan")), "pixel_values contain NaN")):
        model(good)
        before = _tokenizer_state(model)
        with pytest.raises(ValueError, match=error):
            with queued_value_checks():
                model(bad)
                model(good)
        for key, value in model.quantizer.state_dict().items():
            assert torch.equal(value, before[key]), (key, error)
    model(good)  # and the next good batch is taken in
    assert not all(torch.equal(value, before[key]) for key, value in model.quantizer.state_dict().items())


def test_read_flags_are_read_again_after_the_state_is_loaded_or_reset():
    # k-means init: a quantizer whose state is loaded back to "not initialised" initialises again, as a
    # fresh one does on the same batch (its flag was read True before: that read must not be reused).
    torch.manual_seed(0)
    fresh_state = VectorQuantizer(4, 8, behaviours=[KMeansInit(iters=2)]).state_dict()
    quantizer = VectorQuantizer(4, 8, behaviours=[KMeansInit(iters=2)]).train()
    for _ in range(3):
        quantizer(torch.randn(32, 4))
    quantizer.load_state_dict(fresh_state)
    batch = torch.randn(32, 4)
    fresh = VectorQuantizer(4, 8, behaviours=[KMeansInit(iters=2)]).train()
    fresh.load_state_dict(fresh_state)
    torch.manual_seed(1)
    quantizer(batch)
    torch.manual_seed(1)
    fresh(batch)
    assert bool(quantizer.behaviours[0].initialised) and torch.equal(quantizer.codebook, fresh.codebook)
    # the random anchor pool: read full, then reset: the next small batch fills it from row 0 again
    quantizer = VectorQuantizer(4, 8, behaviours=[DeadCodeReinit("random")]).train()
    for _ in range(4):
        quantizer(torch.randn(6, 4))  # 6 + 2 rows: full after two calls, read full by the third
    pool = quantizer.behaviours[0]
    quantizer.reset_codebook()
    batch = torch.randn(6, 4)
    quantizer(batch)
    assert int(pool.pool_filled) == 6 and torch.equal(pool.feature_pool[:6], batch)


@pytest.mark.parametrize("model", [{"model_type": "vqvae", "use_ema": True},
                                   {"model_type": "cvq_vae", "hidden_dim": 16, "codebook_size": 32,
                                    "codebook_dim": 8, "anchor": "random"}], ids=["ema", "cvq"])
def test_codebook_behaviour_training_steps_between_logging_steps_never_read_the_device(tmp_path, model):
    raw = tiny_raw(tmp_path, data={"max_eval_images": 4}, model=model,
                   training={"max_steps": 4, "log_every": 3, "report_to": "none"})
    if model["model_type"] == "cvq_vae":
        raw["model"] = {"image_size": 16, **model}
    config = TrainConfig.from_dict(raw)
    assert_no_reads_between_logging_steps(TokenizerObjective(config), config)


def test_online_clustering_steps_between_logging_steps_never_read_the_device(tmp_path):
    # Cluster (stage 1): frozen teacher features, CVQ anchors; the objective counts codes without a range check.
    from test_vq_cluster import cluster_raw
    from tiny_teachers import save_tiny_teacher

    from hf_vq.training import OnlineClusteringObjective

    folder = tmp_path / "images"
    folder.mkdir()
    generator = torch.Generator().manual_seed(5)
    for index in range(8):
        array = torch.randint(0, 256, (40, 40, 3), generator=generator, dtype=torch.uint8).numpy()
        Image.fromarray(array).save(folder / f"image{index:02d}.png")
    raw = cluster_raw(save_tiny_teacher("clip", tmp_path / "clip"), tmp_path / "run", str(folder))
    raw["training"].update(max_steps=4, log_every=3)
    config = TrainConfig.from_dict(raw)
    assert_no_reads_between_logging_steps(OnlineClusteringObjective(config), config)


def test_offline_kmeans_reads_once_per_lloyd_iteration_and_twice_per_kmeans_plus_plus_centre():
    # (build-codebook, Cluster's init_codebook_from_kmeans.) A Lloyd iteration reads its inertia (convergence,
    # history), no longer its counts (bincount); a k-means++ centre reads the total and the probabilities (its
    # draw is on the seeded CPU generator), no longer the best candidate. Plus a few reads per fit (the points'
    # fingerprint and finiteness, the final inertia).
    from hf_vq.quantizers.clustering import KMeans

    points, iters, k = torch.randn(600, 4, generator=torch.Generator().manual_seed(0)), 5, 16
    with count_host_syncs() as syncs:
        KMeans(k, max_iters=iters, tol=0, init="random").fit(points)
    assert syncs.count <= iters + 5, syncs.report()
    with count_host_syncs() as syncs:
        KMeans(k, max_iters=iters, tol=0, init="k-means++").fit(points)
    assert syncs.count <= 2 * (k - 1) + iters + 6, syncs.report()


def test_indices_of_a_bad_input_are_never_looked_up_out_of_range_before_its_check_is_read():
    # FSQ rounds NaN latents to indices far outside the codebook. While the input's check is queued, the batch
    # perplexity and the training objectives' usage counts count them clamped: an out-of-range index_add_ is an
    # IndexError on a CPU and a device-side assert (a dead CUDA context) on a GPU, before the clear error.
    from hf_vq.quantizers import FSQ, CodebookUsage

    torch.manual_seed(0)
    model = hf_vq.FSQVAEModel(hf_vq.FSQVAEConfig(image_size=8, hidden_dim=8, num_res_blocks=1)).train()
    usage = CodebookUsage(model.config.codebook_size)
    with pytest.raises(ValueError, match="pixel_values contain NaN") as error:
        with queued_value_checks():  # the engine's steps: the objective counts the codes before the read
            usage.update(model(torch.full((1, 3, 8, 8), float("nan"))).indices, check_range=False)
    assert error.value.__context__ is None, repr(error.value.__context__)
    with pytest.raises(ValueError, match="FSQ input contains NaN") as error:
        FSQ([8, 5, 5])(torch.full((3, 3), float("nan")))
    assert error.value.__context__ is None, repr(error.value.__context__)
