"""The benchmark suite: hf_vq against its peers and the official code, one command, one report.

    python benchmarks/run_all.py [--quick] [--output-dir DIR] \
        [--llamagen PATH] [--taming PATH] [--titok PATH]

writes ``DIR/RESULTS.md`` (default ``benchmarks/``) and ``DIR/results.png``. Every row is timed
side by side with its peers in the same run: the ratios compare figures taken minutes apart
on the same machine under the same load, the absolute seconds do not travel between machines.

What runs (``--quick``: the same code at small sizes, one process, a smoke test):

* the machine's limit: float32 FLOP/s of a large square matmul;
* the nearest-code search: hf_vq's tiled ``nearest_code`` (through ``VectorQuantizer``) vs
  ``torch.cdist`` + argmin and vector-quantize-pytorch's ``VectorQuantize``, forward and
  forward+backward, 16,384 and 100,000 codes, and the floor ``2 N K (d+1)`` FLOPs / matmul FLOP/s; the opt-in
  fused C kernel ("hf_vq fused (opt-in)") timed interleaved with the tiled search and the matmul in one process
  (``search_kernels.py``; without a C compiler its row says so);
* the other quantizers (FSQ, LFQ, SimVQ vs vector-quantize-pytorch; IBQ and the VQGAN-LC
  projected-codebook search on their own);
* tokenizers: encode and decode images/s of LlamaGen VQ-16, taming VQGAN f16-16384 and
  TiTok-S-128, ours vs the official code on the same converted weights, fp32 and bf16 (the
  official checkouts are given by path; without one the row says "official code not given");
* tokenizer training step (``tokenizer_training_step.py``): LlamaGen VQ-16 + LPIPS + PatchGAN, the
  engine's step as ``hf-vq train`` runs it vs LlamaGen's ``vq_train.py`` step on the same weights,
  batch and losses, with a check that both compute the same loss on the same batch (LPIPS on
  random VGG weights, the same on both sides: timing only);
* GPT training step: the engine (``hf-vq train-ar``'s loop), a plain loop on our model and
  LlamaGen's own ``Transformer`` step as ``train_c2i.py`` runs it (forward with targets,
  backward, AdamW), same sizes;
* KV-cached AR generation tokens/s, ours vs LlamaGen's ``generate``;
* data pipeline (``data_and_metrics.py``): images/s from a folder of JPEGs with the train
  transform, our loader vs a plain PIL loop vs ``datasets`` + ``torchvision.transforms.v2``,
  against the bare JPEG decode rate;
* FID Inception features images/s, ours vs torch-fidelity (random weights, the same file for
  both: timing only), with a check that both networks give the same features;
* ``import hf_vq`` vs ``import torch``.

Timing: each figure is the median of several runs after one warm-up, with the spread
(min-max); a slow case gets as many runs as fit 40 s (at least 2; 1 when its warm-up call alone took longer).
Peak memory (full runs only): every case runs in its own subprocess and reports
``ru_maxrss`` (the process's peak resident set) minus its value after the setup, i.e. the
extra memory the timed calls needed at their peak (0: they stayed below the setup's own
peak). Quick runs share one process and report no memory. The README's performance table is generated from RESULTS.md by
``benchmarks/readme_table.py`` (``--write`` updates README.md; a test checks they agree).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_GIVEN = "official code not given"


# ---------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# A case gets as many timed runs as fit this budget after its warm-up (at least 2; 1 when the
# warm-up call alone took longer), so the slow peers (minutes a call on a shared CPU) do not
# dominate the suite's time.
CASE_BUDGET_SECONDS = 40.0


def time_calls(step, repeats: int, warmup: int = 1) -> list:
    for _ in range(warmup):
        start = time.perf_counter()
        step()
        took = time.perf_counter() - start
        repeats = min(repeats, 1 if took > CASE_BUDGET_SECONDS else max(2, int(CASE_BUDGET_SECONDS / took)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def measure(setup, repeats: int) -> dict:
    """``setup()`` -> (step, extra dict); times ``step`` and records the extra peak RSS."""
    step, extra = setup()
    extra = dict(extra or {})
    baseline = peak_rss_mb()
    times = time_calls(step, repeats, warmup=extra.pop("warmup", 1))
    if hasattr(step, "result"):  # a case that times its own steps (the engine)
        extra["result"] = step.result
    if hasattr(step, "indices"):  # the encoder's output, to compare ours with the official one
        extra["indices"] = step.indices
    if hasattr(step, "parts"):  # a case that reports parts of its step (the tokenizer training step)
        extra.update(step.parts)
    return {"times": times, "extra_peak_mb": peak_rss_mb() - baseline, **extra}


# ---------------------------------------------------------------------------------------------
# cases: each is a function(params) -> (step, extra); params is a JSON-able dict
# ---------------------------------------------------------------------------------------------
def case_matmul(p):
    import torch

    a, b = torch.randn(p["size"], p["size"]), torch.randn(p["size"], p["size"])
    return (lambda: torch.mm(a, b)), {"flops": 2 * p["size"] ** 3}


def case_search(p):
    import torch

    n, k, d, impl, backward = p["n"], p["k"], p["d"], p["impl"], p["mode"] == "forward+backward"
    generator = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(n, d, generator=generator), torch.randn(k, d, generator=generator)
    x = z.clone().requires_grad_(backward)
    if impl == "hf_vq":
        from hf_vq.quantizers import VectorQuantizer, nearest

        nearest.set_cpu_search_kernel("tiled")  # the default, whatever $HF_VQ_CPU_SEARCH says
        vq = VectorQuantizer(d, k, codebook_init="normal").train(backward)
        with torch.no_grad():
            vq.codebook.copy_(codebook)

        def run():
            out = vq(x)
            if backward:
                (out.quantized.sum() + out.loss).backward()
            return out.indices
    elif impl == "cdist":
        cb = codebook.clone().requires_grad_(backward)

        def run():
            indices = torch.cdist(x, cb).argmin(1)
            if backward:
                ((x - cb[indices]) ** 2).mean().backward()
            return indices
    elif impl == "vqp":
        from vector_quantize_pytorch import VectorQuantize

        # vqp configured as hf_vq's plain quantizer (codebook learned by gradient); its eval mode
        # returns a detached output, so forward+backward runs in train mode.
        vq = VectorQuantize(dim=d, codebook_size=k, commitment_weight=0.25, learnable_codebook=True, ema_update=False)
        vq.train(backward)
        with torch.no_grad():
            vq._codebook.embed.copy_(codebook[None])

        def run():
            q, indices, loss = vq(x[None])
            if backward:
                (q.sum() + loss.sum()).backward()
            return indices[0]
    else:
        raise ValueError(impl)

    def step():
        with torch.set_grad_enabled(backward):
            return run()

    extra = {}
    if impl == "hf_vq" and not backward:
        # same indices as float64 brute force, up to ties (the float64 gap below 1e-4)
        indices = step()
        mismatched = 0
        for start in range(0, n, 512):
            distances = torch.cdist(z[start : start + 512].double(), codebook.double()) ** 2
            best = distances.min(1).values
            chosen = distances.gather(1, indices[start : start + 512, None])[:, 0]
            mismatched += int(((chosen - best) > 1e-4 * best.clamp(min=1)).sum())
        extra["not_nearest_in_float64"] = mismatched
    return step, extra


def case_search_matmul(p):
    """The search's matmul alone: the same (codes x (d + 1)) @ ((d + 1) x vectors) tiles as
    ``nearest_code`` on CPU, no reduction, so the report can say how much of the search's time the
    skinny product itself takes and at what fraction of the square matmul's FLOP/s it runs."""
    import torch

    from hf_vq.quantizers import nearest

    n, k, d = p["n"], p["k"], p["d"]
    generator = torch.Generator().manual_seed(0)
    codes, vectors_t = torch.randn(k, d + 1, generator=generator), torch.randn(d + 1, n, generator=generator)
    tile_codes, tile_rows = min(k, nearest.TILE_CODES), min(n, nearest.TILE_ROWS)
    tile = torch.empty(tile_codes, tile_rows)

    def step():
        for start in range(0, n, tile_rows):
            block = vectors_t[:, start : start + tile_rows]
            for first in range(0, k, tile_codes):
                part = codes[first : first + tile_codes]
                torch.mm(part, block, out=tile[: part.shape[0], : block.shape[1]])

    return step, {"flops": 2 * n * k * (d + 1)}


def case_search_kernels(p):
    """hf_vq's tiled (default) and fused (opt-in) CPU searches and the square matmul, timed interleaved in one
    process (``search_kernels.py``, best of ``runs``): both x-floor figures from the same runs. One call; its
    figures are in ``interleaved``."""
    sys.path.insert(0, str(HERE))
    from search_kernels import time_interleaved

    def step():
        step.parts = {"interleaved": time_interleaved(p["n"], p["k"], p["d"], p["runs"], p["matmul_size"])}

    return step, {"warmup": 0}


def case_quantizer(p):
    import torch

    name, impl, n, backward = p["name"], p["impl"], p["n"], p["mode"] == "forward+backward"
    torch.manual_seed(0)
    if impl == "hf_vq":
        from hf_vq import quantizers as q

        module = {
            "FSQ": lambda: q.FSQ(p["levels"]),
            "LFQ": lambda: q.LFQ(p["dim"]),
            "SimVQ": lambda: q.SimVQ(p["dim"], p["codebook_size"]),
            "IBQ": lambda: q.IBQ(p["dim"], p["codebook_size"]),
            "VQGAN-LC": lambda: q.ProjectedCodebookQuantizer(p["dim"], p["codebook_size"], feature_dim=p["feature_dim"]),
        }[name]()

        def forward(x):
            out = module(x)
            return out.quantized.sum() + out.loss
    else:
        import vector_quantize_pytorch as vqp

        if name == "FSQ":
            module = vqp.FSQ(levels=p["levels"])

            def forward(x):
                return module(x[None])[0].sum()
        elif name == "LFQ":
            module = vqp.LFQ(dim=p["dim"], codebook_size=2 ** p["dim"], entropy_loss_weight=0.1, commitment_loss_weight=0.25)

            def forward(x):
                quantized, _, loss = module(x[None])
                return quantized.sum() + loss
        elif name == "SimVQ":
            module = vqp.SimVQ(dim=p["dim"], codebook_size=p["codebook_size"])

            def forward(x):
                quantized, _, loss = module(x[None])
                return quantized.sum() + loss.sum()
        else:
            raise ValueError(name)
    module.train(backward)
    x = torch.randn(n, p["dim"]).requires_grad_(backward)

    def step():
        with torch.set_grad_enabled(backward):
            value = forward(x)
            if backward:
                value.backward()

    return step, {}


# -- tokenizers ------------------------------------------------------------------------------
_CHECKOUTS_ON_PATH = []


def use_checkout(checkout: str) -> None:
    """Put an official checkout first on the path, and take the others used before off it. The checkouts
    share top-level names (``utils``, ``modeling``, ``tokenizer``): forget modules of those names imported
    from another one. (Another checkout left on the path would still win: a regular package such as
    TiTok's ``utils/`` is preferred to a namespace package such as LlamaGen's, wherever it stands.)"""
    checkout = str(Path(checkout).resolve())
    names = {entry.stem if entry.suffix == ".py" else entry.name for entry in Path(checkout).iterdir()}
    for module in list(sys.modules):
        top = module.split(".")[0]
        loaded = sys.modules[module]
        # a namespace package (LlamaGen's `tokenizer/`) has no __file__: its __path__ says where it lives
        origin = getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", None) or []), "") or ""
        if top in names and not str(Path(origin).resolve()).startswith(checkout):
            del sys.modules[module]
    for other in _CHECKOUTS_ON_PATH:
        while other in sys.path:
            sys.path.remove(other)
    _CHECKOUTS_ON_PATH[:] = [checkout]
    sys.path.insert(0, checkout)


def _official_llamagen(checkout, quick):
    use_checkout(checkout)
    from tokenizer.tokenizer_image.vq_model import VQ_16

    return VQ_16()


def _official_taming(checkout, quick):
    import torch.nn as nn

    use_checkout(checkout)
    from taming.modules.diffusionmodules.model import Decoder, Encoder
    from taming.modules.vqvae.quantize import VectorQuantizer2

    # taming's VQModel is a Lightning module (pytorch_lightning is not installed): the same
    # submodules under the same names, with VQModel's encode / decode_code steps below.
    ddconfig = dict(double_z=False, z_channels=256, resolution=256, in_channels=3, out_ch=3, ch=128,
                    ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16], dropout=0.0)
    model = nn.Module()
    model.encoder, model.decoder = Encoder(**ddconfig), Decoder(**ddconfig)
    model.quantize = VectorQuantizer2(16384, 256, beta=0.25)
    model.quant_conv, model.post_quant_conv = nn.Conv2d(256, 256, 1), nn.Conv2d(256, 256, 1)
    return model


TITOK_S128 = {
    "model": {"vq_model": {"codebook_size": 4096, "token_size": 12, "use_l2_norm": True, "commitment_cost": 0.25,
                           "vit_enc_model_size": "small", "vit_dec_model_size": "small", "vit_enc_patch_size": 16,
                           "vit_dec_patch_size": 16, "num_latent_tokens": 128, "finetune_decoder": True}},
    "dataset": {"preprocessing": {"crop_size": 256}},
}


def _official_titok(checkout, image_size):
    use_checkout(checkout)
    from modeling.titok import TiTok

    config = json.loads(json.dumps(TITOK_S128))
    config["dataset"]["preprocessing"]["crop_size"] = image_size
    return TiTok(config)


def _official_steps(name, model, batch_size, image_size):
    import torch

    if name == "llamagen":
        def encode(x):
            return model.encode(x)[2][2].reshape(batch_size, image_size // 16, image_size // 16)

        def decode(indices):
            return model.decode_code(indices.reshape(-1), (batch_size, 8, image_size // 16, image_size // 16))
    elif name == "taming":
        def encode(x):
            return model.quantize(model.quant_conv(model.encoder(x)))[2][2].reshape(
                batch_size, image_size // 16, image_size // 16)

        def decode(indices):
            h = w = image_size // 16
            quant = model.quantize.get_codebook_entry(indices.reshape(-1), (batch_size, h, w, 256))
            return model.decoder(model.post_quant_conv(quant))
    else:
        def encode(x):
            return model.encode((x + 1) / 2)[1]["min_encoding_indices"]  # official input range [0, 1]

        def decode(indices):
            return model.decode_tokens(indices.reshape(batch_size, 1, -1))
    del torch
    return encode, decode


def case_tokenizer(p):
    """Encode (images -> indices) or decode (indices -> images) of one tokenizer, ours or official."""
    import torch

    name, impl, dtype = p["name"], p["impl"], getattr(torch, p["dtype"])
    batch_size, image_size, checkout = p["batch_size"], p["image_size"], p.get("checkout")
    key = json.dumps({k: v for k, v in p.items() if k != "op"}, sort_keys=True)
    if key not in _TOKENIZER_CACHE:  # one-process (quick) runs build each model once for both ops
        _TOKENIZER_CACHE.clear()
        _TOKENIZER_CACHE[key] = _build_tokenizer(name, impl, dtype, batch_size, image_size, checkout)
    encode, decode, pixel_values, indices = _TOKENIZER_CACHE[key]

    def step():
        with torch.no_grad():
            if p["op"] == "decode":
                return decode(indices)
            step.indices = encode(pixel_values).reshape(-1).tolist() if p["dtype"] == "float32" else None

    return step, {}


_TOKENIZER_CACHE = {}


def _build_tokenizer(name, impl, dtype, batch_size, image_size, checkout, device="cpu"):
    """(encode, decode, pixel_values, indices) of one tokenizer on ``device`` (``benchmarks/gpu.py`` passes cuda)."""
    import torch

    from hf_vq.convert import convert_llamagen_checkpoint, convert_taming_checkpoint
    from hf_vq.convert.titok import config_from_official, convert_titok_state_dict

    torch.manual_seed(0)
    official = None
    if checkout:
        official = {"llamagen": lambda: _official_llamagen(checkout, image_size),
                    "taming": lambda: _official_taming(checkout, image_size),
                    "titok": lambda: _official_titok(checkout, image_size)}[name]().eval()
        with torch.no_grad():  # a codebook of distinct codes (the official init is near-degenerate for some)
            for module_name, module in official.named_modules():
                if isinstance(module, torch.nn.Embedding) and "quantize" in module_name:
                    module.weight.normal_()
    if impl == "official":
        model = official
        encode, decode = _official_steps(name, model, batch_size, image_size)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            if name == "llamagen":
                path = Path(scratch) / "vq.pt"
                if official is not None:
                    torch.save({"model": official.state_dict()}, path)
                    model = convert_llamagen_checkpoint(path, image_size=image_size)
                else:
                    from hf_vq import LlamaGenVQConfig, LlamaGenVQModel

                    model = LlamaGenVQModel(LlamaGenVQConfig.vq_16(image_size=image_size))
            elif name == "taming":
                path = Path(scratch) / "vqgan.ckpt"
                if official is not None:
                    torch.save({"state_dict": official.state_dict()}, path)
                    model = convert_taming_checkpoint(path, image_size=image_size)
                else:
                    from hf_vq import VQGANConfig, VQGANModel

                    model = VQGANModel(VQGANConfig.taming_f16_16384(image_size=image_size))
            else:
                config = json.loads(json.dumps(TITOK_S128))
                config["dataset"]["preprocessing"]["crop_size"] = image_size
                config = config_from_official(config)
                if official is not None:
                    model = convert_titok_state_dict(official.state_dict(), config)
                else:
                    from hf_vq.models.titok import TiTokModel

                    model = TiTokModel(config)

        def encode(x):
            return model.encode(x).indices

        def decode(indices):
            return model.decode_indices(indices).sample
    model = model.to(device=device, dtype=dtype).eval()
    generator = torch.Generator().manual_seed(0)
    pixel_values = (torch.rand(batch_size, 3, image_size, image_size, generator=generator) * 2 - 1).to(device, dtype)
    # decode's input: random indices of the encoder's shape (nothing is encoded during the setup, so
    # the setup's peak memory stays below the timed calls')
    codebook_size, token_shape = {"llamagen": (16384, (image_size // 16,) * 2), "taming": (16384, (image_size // 16,) * 2),
                                  "titok": (4096, (128,))}[name]
    indices = torch.randint(0, codebook_size, (batch_size, *token_shape), generator=generator).to(device)
    return encode, decode, pixel_values, indices


# -- GPT training step and generation --------------------------------------------------------
def _gpt_config(p):
    from hf_vq.models.llamagen_gpt import LlamaGenGPTConfig

    return LlamaGenGPTConfig(vocab_size=p["vocab"], block_size=p["tokens"], hidden_size=p["hidden"],
                             num_hidden_layers=p["layers"], num_attention_heads=p["heads"], num_classes=10,
                             multiple_of=32)


def official_gpt(checkout, config):
    """LlamaGen's class-conditional ``Transformer`` from ``checkout`` with the architecture of our
    ``LlamaGenGPTConfig`` ``config`` (one class token), so converted weights fit either side."""
    use_checkout(checkout)
    from autoregressive.models.gpt import ModelArgs, Transformer

    return Transformer(ModelArgs(dim=config.hidden_size, n_layer=config.num_hidden_layers,
                                 n_head=config.num_attention_heads, vocab_size=config.vocab_size,
                                 block_size=config.block_size, num_classes=config.num_classes, cls_token_num=1,
                                 model_type="c2i", multiple_of=config.multiple_of))


def case_gpt_step(p):
    import torch

    from hf_vq.convert.llamagen_gpt import convert_llamagen_gpt_state_dict
    from hf_vq.models.llamagen_gpt import LlamaGenGPTModel

    config = _gpt_config(p)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, p["vocab"], (p["batch"], p["tokens"]), generator=generator)
    labels = torch.arange(p["batch"]) % 10
    torch.manual_seed(0)
    if p["impl"] == "official":
        if not p.get("checkout"):
            raise RuntimeError(NOT_GIVEN)
        model = official_gpt(p["checkout"], config)

        def loss_fn():  # train_c2i.py: model(cond_idx=c_indices, idx=z_indices[:, :-1], targets=z_indices)
            return model(cond_idx=labels, idx=ids[:, :-1], targets=ids)[1]
    else:
        model = LlamaGenGPTModel(config)
        if p.get("checkout"):  # same weights as the official row when it runs
            official = official_gpt(p["checkout"], config)
            model.load_state_dict(convert_llamagen_gpt_state_dict(official.state_dict()))

        def loss_fn():
            return model(input_ids=ids[:, :-1], class_labels=labels, labels=ids).loss
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, betas=(0.9, 0.95))

    def step():
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, {}


def case_gpt_engine(p):
    """``hf-vq train-ar``'s engine: seconds per step from ar_training_speed.py's timed engine."""
    import torch
    from datasets import Dataset, load_from_disk

    sys.path.insert(0, str(HERE))
    from ar_training_speed import engine_step_times

    config = _gpt_config(p)
    generator = torch.Generator().manual_seed(0)
    rows = 8 * p["batch"]
    ids = torch.randint(0, p["vocab"], (rows, p["tokens"]), generator=generator)
    args = argparse.Namespace(batch_size=p["batch"], steps=p["repeats"] + 2, warmup=2, mixed_precision="no",
                              device="cpu")

    def step():
        with tempfile.TemporaryDirectory() as workdir:
            workdir = Path(workdir)
            Dataset.from_dict({"input_ids": ids.tolist(), "class_labels": [i % 10 for i in range(rows)]}).save_to_disk(
                workdir / "tokens")
            step.result = engine_step_times(config, load_from_disk(str(workdir / "tokens")), args, workdir)

    return step, {"warmup": 0}


def case_generate(p):
    import torch

    from hf_vq.convert.llamagen_gpt import convert_llamagen_gpt_state_dict
    from hf_vq.generation import generate
    from hf_vq.models.llamagen_gpt import LlamaGenGPTModel

    config = _gpt_config(p)
    labels = torch.arange(p["batch"]) % 10
    torch.manual_seed(0)
    if p.get("checkout"):
        official = official_gpt(p["checkout"], config).eval()
        from autoregressive.models.generate import generate as official_generate

        torch.nn.init.normal_(official.output.weight, std=0.02)
    elif p["impl"] == "official":
        raise RuntimeError(NOT_GIVEN)
    if p["impl"] == "official":
        def step():
            with torch.no_grad():
                official_generate(official, labels, p["tokens"], cfg_scale=2.0, cfg_interval=-1, temperature=1.0,
                                  top_k=p["vocab"], top_p=1.0, sample_logits=True)
    else:
        model = LlamaGenGPTModel(config).eval()
        if p.get("checkout"):
            model.load_state_dict(convert_llamagen_gpt_state_dict(official.state_dict()))
        else:
            torch.nn.init.normal_(model.lm_head.weight, std=0.02)

        def step():
            with torch.no_grad():
                generate(model, labels, guidance_scale=2.0, top_k=p["vocab"], use_cache=p["impl"] == "hf_vq")
    return step, {"tokens_generated": p["batch"] * p["tokens"]}


def case_import(p):
    command = [sys.executable, "-c", p["statement"]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    return (lambda: subprocess.run(command, check=True, env=env)), {}


def all_cases() -> dict:
    """``{kind: case function}``: this file's ``case_*`` and those of the section modules beside it."""
    import importlib

    sys.path.insert(0, str(HERE))
    namespaces = [globals()] + [vars(importlib.import_module(name)) for name in ("data_and_metrics",
                                                                              "tokenizer_training_step")]
    return {name[len("case_"):]: function for namespace in namespaces for name, function in namespace.items()
            if name.startswith("case_")}


CASES = all_cases()


# ---------------------------------------------------------------------------------------------
# running the cases
# ---------------------------------------------------------------------------------------------
def run_case(kind: str, params: dict, repeats: int, isolated: bool) -> dict:
    """Run one case in a subprocess (its own peak memory) or in this process (quick)."""
    if not isolated:
        try:
            result = measure(lambda: CASES[kind](params), repeats)
        except Exception as error:  # a failed peer is a row that says why, not a failed suite
            return {"error": str(error).splitlines()[0][:200] if str(error) else type(error).__name__}
        result["extra_peak_mb"] = None
        return result
    command = [sys.executable, __file__, "--case", kind, json.dumps(params), str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [""]
        reason = f"killed by signal {-done.returncode} (out of memory?)" if done.returncode < 0 else lines[-1][:200]
        return {"error": reason}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(result: dict) -> dict:
    if "error" in result:
        return result
    times = result["times"]
    if "result" in result:  # the engine case reports its own per-step time
        times = result["result"]
    return {**result, "median": statistics.median(times), "low": min(times), "high": max(times)}


def fmt_seconds(result: dict) -> str:
    if "error" in result:
        return result["error"]
    return f"{result['median']:.3g} s ({result['low']:.3g}-{result['high']:.3g})"


def fmt_memory(result: dict) -> str:
    if "error" in result or result.get("extra_peak_mb") is None:
        return "-"
    return f"{result['extra_peak_mb']:.0f}"


def ratio(other: dict, ours: dict) -> str:
    """How many times longer ``other`` took than ours (> 1: ours is faster)."""
    if "error" in other or "error" in ours:
        return "-"
    return f"{other['median'] / ours['median']:.2f}x"


def versus(peer_name: str, peer: dict, ours: dict) -> str:
    """'<peer> takes 1.23x our time' (or why there is no ratio)."""
    if "error" in peer:
        return f"{peer_name}: {peer['error']}"
    return f"{peer_name} takes {ratio(peer, ours)} our time"


def search_kernel_section(run, sizes, d: int, quick: bool):
    """RESULTS.md's table of the tiled (default) and fused (opt-in) searches timed interleaved in one process, and the
    summary row of the fused search for each size (``{(n, k): row}``, placed beside the default search's row)."""
    lines = [f"### hf_vq's CPU searches, interleaved in one process (dim {d})", "",
             "The default tiled search and the opt-in fused C kernel (`hf_vq.quantizers.nearest."
             "set_cpu_search_kernel(\"fused\")`, compiled on first use with the system C compiler), timed "
             "back to back with the square matmul in one process; best of the runs (after one warm-up), so the "
             "x-floor figures of both come from the same seconds. Floor: 2 N K (d+1) FLOPs at that matmul rate.",
             "", "| search | vectors x codes | best s | x floor | tiled / fused | matmul GFLOP/s | floor s | runs "
             "| load before / after | indices differing from tiled |", "|---|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for n, k in sizes:
        kernels = run("search_kernels", {"n": n, "k": k, "d": d, "runs": 2 if quick else 7,
                                         "matmul_size": 1024 if quick else 2048}, n=1)
        if "error" in kernels:
            lines.append(f"| hf_vq tiled (default) | {n:,} x {k:,} | {kernels['error']} | - | - | - | - | - | - | - |")
            summary[n, k] = f"| Nearest-code search, {n:,} x {k:,} codes x dim {d}, forward, hf_vq fused (opt-in) | " \
                            f"{kernels['error']} |"
            continue
        got = kernels["interleaved"]
        tiled, fused = got["tiled"], got["fused"]
        shared = (f"{got['matmul_flops_per_second'] / 1e9:.1f} | {got['floor']:.3g} s | {got['runs']} | "
                  f"{got['load_before'][0]:.2f} / {got['load_after'][0]:.2f}")
        lines.append(f"| hf_vq tiled (default) | {n:,} x {k:,} | {tiled['seconds']:.3g} s | "
                     f"{tiled['over_floor']:.2f}x | 1.00x | {shared} | 0 |")
        if "error" in fused:
            lines.append(f"| hf_vq fused (opt-in) | {n:,} x {k:,} | not measured: {fused['error']} | - | - | "
                         f"{shared} | - |")
            result = f"not measured: {fused['error']}"
        else:
            lines.append(f"| hf_vq fused (opt-in) | {n:,} x {k:,} | {fused['seconds']:.3g} s | "
                         f"{fused['over_floor']:.2f}x | {tiled['seconds'] / fused['seconds']:.2f}x | {shared} | "
                         f"{fused['indices_differ_from_tiled']} |")
            result = (f"hf_vq fused {fused['seconds']:.3g} s (best of {got['runs']}, interleaved with the default); "
                      f"{fused['over_floor']:.1f}x the matmul floor, the default tiled search "
                      f"{tiled['over_floor']:.1f}x in the same runs")
        summary[n, k] = f"| Nearest-code search, {n:,} x {k:,} codes x dim {d}, forward, hf_vq fused (opt-in) | {result} |"
    return lines + [""], summary


def machine_lines(quick: bool) -> list:
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("transformers", "vector_quantize_pytorch", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:
            versions[module] = "not installed"
    try:
        from importlib.metadata import version

        versions["vector_quantize_pytorch"] = version("vector-quantize-pytorch")
    except Exception:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"mode: {'quick (smoke sizes, one process, no memory figures)' if quick else 'full'}",
        f"- Machine: {cpu}, {os.cpu_count()} cores, {memory_gb:.0f} GB; torch threads {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); GPU: "
        + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (GPU figures were not measured)"),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]


def load_line(load_before: tuple) -> str:
    """The load averages when the run started and now (call it when the run ends)."""
    return (f"- Load average (1, 5, 15 min) at the start: {load_before[0]:.2f}, {load_before[1]:.2f}, "
            f"{load_before[2]:.2f}; at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
            "(other jobs shared the machine when above ~0)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one process: a smoke test (< 2 minutes)")
    parser.add_argument("--output-dir", default=str(HERE), help="where RESULTS.md and results.png go")
    parser.add_argument("--repeats", type=int, help="timed runs per case (default 5; quick 2)")
    parser.add_argument("--llamagen", help="path of a FoundationVision/LlamaGen checkout")
    parser.add_argument("--taming", help="path of a CompVis/taming-transformers checkout")
    parser.add_argument("--titok", help="path of a bytedance/1d-tokenizer checkout")
    parser.add_argument("--tokenizer-batch", type=int, default=8, help="tokenizer batch size at 256x256 (full runs)")
    parser.add_argument("--train-batch", type=int, default=2, help="tokenizer training step batch size (full runs)")
    parser.add_argument("--train-image-size", type=int, default=64,
                        help="tokenizer training step image size (full runs; 256 in vq_train.py: minutes a step on a CPU)")
    parser.add_argument("--bf16", action="store_true",
                        help="also time the tokenizers in bfloat16 (very slow on CPUs without bf16 instructions)")
    parser.add_argument("--only", help="comma-separated sections to run (default all)")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        kind, params, repeats = args.case
        result = measure(lambda: CASES[kind](json.loads(params)), int(repeats))
        print(json.dumps(result))
        return
    load_before = os.getloadavg()
    quick = args.quick
    repeats = args.repeats or (2 if quick else 5)
    isolated = not quick
    sections = set(args.only.split(",")) if args.only else None

    def run(kind, params, n=repeats):
        result = summary(run_case(kind, params, n, isolated))
        print(json.dumps({"case": kind, **params, **{k: v for k, v in result.items() if k not in ("indices",)}},
                         default=str)[:400], flush=True)
        return result

    lines = ["# hf_vq benchmark results", "",
             "Generated by `python benchmarks/run_all.py" + (" --quick" if quick else "") + "`; do not edit by hand.",
             "Times: median of the timed runs after one warm-up, (min-max) in brackets "
             f"({repeats} runs, fewer where they did not fit {CASE_BUDGET_SECONDS:.0f} s: at least 2, or 1 when the "
             "warm-up call alone took longer). Ratios: the peer's median "
             "over ours, measured in the same run (> 1x: hf_vq is faster). Peak memory: the case's own "
             "subprocess, `ru_maxrss` after the timed runs minus `ru_maxrss` after its setup (MB).", ""]
    summary_rows = []

    # -- the machine's limit -------------------------------------------------------------------
    matmul = run("matmul", {"size": 1024 if quick else 2048})
    flops_per_second = matmul["flops"] / matmul["low"] if "error" not in matmul else float("nan")
    lines += ["## Machine", *machine_lines(quick)]
    load_index = len(lines)  # the load line's place: its "at the end" value is only known when the run ends
    lines += ["", f"- float32 matmul {1024 if quick else 2048}^2: {flops_per_second / 1e9:.1f} GFLOP/s (best run), "
              f"median {matmul.get('flops', 0) / matmul.get('median', 1) / 1e9:.1f}", ""]

    # -- nearest-code search -------------------------------------------------------------------
    if sections is None or "search" in sections:
        d = 8
        sizes = [(2048, 1024), (1024, 4096)] if quick else [(16384, 16384), (4096, 100000)]
        lines += ["## Nearest-code search (dim 8)", "",
                  "hf_vq: `VectorQuantizer` (`nearest_code`: one matmul of augmented matrices per tile of 2,048 "
                  "codes x 256 vectors, each tile reduced to minima of 64-code groups, the winning group's scores "
                  "recomputed for the index); cdist: `torch.cdist(z, C).argmin(1)`; "
                  "vqp: vector-quantize-pytorch `VectorQuantize` (learnable codebook, no EMA; forward in eval, "
                  "forward+backward in train mode). Floor: 2 N K (d+1) FLOPs at the matmul rate above. "
                  "At 100,000 codes the peers' full distance matrix limits N to 4,096 on this 24 GB machine.", "",
                  "| vectors x codes | mode | hf_vq | cdist | vqp | floor | hf_vq / floor | cdist / hf_vq | vqp / hf_vq "
                  "| peak MB hf_vq / cdist / vqp | hf_vq indices not nearest (float64) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        kernel_lines, fused_summary_rows = search_kernel_section(run, sizes, d, quick)
        skinny_lines = []
        for n, k in sizes:
            floor = 2 * n * k * (d + 1) / flops_per_second
            skinny = run("search_matmul", {"n": n, "k": k, "d": d})
            if "error" not in skinny:
                skinny_lines.append(
                    f"- {n:,} x {k:,}: the search's matmul alone (its tiles, no reduction) took "
                    f"{fmt_seconds(skinny)}, {skinny['median'] / floor:.1f}x the floor by itself: this skinny "
                    f"product (inner dimension {d + 1}) ran at {skinny['flops'] / skinny['low'] / 1e9:.1f} GFLOP/s "
                    f"(best run), {skinny['flops'] / skinny['low'] / flops_per_second:.0%} of the square matmul's rate.")
            for mode in ("forward", "forward+backward"):
                got = {impl: run("search", {"impl": impl, "mode": mode, "n": n, "k": k, "d": d})
                       for impl in ("hf_vq", "cdist", "vqp")}
                ours = got["hf_vq"]
                over_floor = f"{ours['median'] / floor:.1f}x" if "error" not in ours else "-"
                lines.append(
                    f"| {n:,} x {k:,} | {mode} | {fmt_seconds(ours)} | {fmt_seconds(got['cdist'])} | "
                    f"{fmt_seconds(got['vqp'])} | {floor:.3g} s | {over_floor} | {ratio(got['cdist'], ours)} | "
                    f"{ratio(got['vqp'], ours)} | {' / '.join(fmt_memory(got[i]) for i in ('hf_vq', 'cdist', 'vqp'))} | "
                    f"{ours.get('not_nearest_in_float64', '-')} |")
                if mode == "forward":
                    summary_rows.append(
                        f"| Nearest-code search, {n:,} x {k:,} codes x dim 8, forward | hf_vq {fmt_seconds(ours)}; "
                        f"{over_floor} the matmul floor; {versus('cdist + argmin', got['cdist'], ours)}, "
                        f"{versus('vector-quantize-pytorch', got['vqp'], ours)} |")
                    summary_rows.append(fused_summary_rows[n, k])
        lines += ["", *skinny_lines, ""] if skinny_lines else [""]
        lines += kernel_lines

    # -- other quantizers ----------------------------------------------------------------------
    if sections is None or "quantizers" in sections:
        n = 2048 if quick else 16384
        specs = [
            ("FSQ", {"levels": [8, 5, 5, 5] if quick else [8, 8, 8, 6, 5], "dim": 4 if quick else 5}, True),
            ("LFQ", {"dim": 10 if quick else 14}, True),
            ("SimVQ", {"dim": 8, "codebook_size": 1024 if quick else 16384}, True),
            ("IBQ", {"dim": 8, "codebook_size": 1024 if quick else 16384}, False),
            ("VQGAN-LC", {"dim": 8, "codebook_size": 2000 if quick else 100000, "feature_dim": 64 if quick else 768},
             False),
        ]
        lines += [f"## Other quantizers ({n:,} vectors)", "",
                  "vqp: vector-quantize-pytorch's `FSQ`, `LFQ` (entropy and commitment losses on), `SimVQ`; it has "
                  "no IBQ or VQGAN-LC projector. VQGAN-LC: `ProjectedCodebookQuantizer` (frozen feature codebook "
                  "through a trainable projector).", "",
                  "| quantizer | mode | hf_vq | vqp | vqp / hf_vq | peak MB hf_vq / vqp |", "|---|---|---|---|---|---|"]
        for name, params, has_peer in specs:
            for mode in ("forward", "forward+backward"):
                ours = run("quantizer", {"name": name, "impl": "hf_vq", "mode": mode, "n": n, **params})
                peer = (run("quantizer", {"name": name, "impl": "vqp", "mode": mode, "n": n, **params}) if has_peer
                        else {"error": "no equivalent"})
                label = name + (f" {params['levels']}" if "levels" in params else
                                f" {params.get('codebook_size', 2 ** params['dim']):,} codes")
                lines.append(f"| {label} | {mode} | {fmt_seconds(ours)} | {fmt_seconds(peer)} | {ratio(peer, ours)} | "
                             f"{fmt_memory(ours)} / {fmt_memory(peer)} |")
        lines.append("")

    # -- tokenizers ----------------------------------------------------------------------------
    if sections is None or "tokenizers" in sections:
        batch_size, image_size = (1, 32) if quick else (args.tokenizer_batch, 256)
        tokenizer_repeats = 2 if quick else min(repeats, 3)
        dtypes = ("float32", "bfloat16") if args.bf16 else ("float32",)
        checkouts = {"llamagen": args.llamagen, "taming": args.taming, "titok": args.titok}
        titles = {"llamagen": "LlamaGen VQ-16", "taming": "taming VQGAN f16-16384", "titok": "TiTok-S-128"}
        lines += [f"## Tokenizers (batch {batch_size} at {image_size}x{image_size})", "",
                  "Encode: images -> indices; decode: indices -> images. Official: the official modules with random "
                  "weights (codebook N(0, 1)); ours: the same weights converted with hf_vq's converter. bf16: weights "
                  "and inputs cast to bfloat16 (no autocast). Images/s from the median.", "",
                  "| tokenizer | dtype | op | hf_vq | official | official / hf_vq | hf_vq images/s | peak MB hf_vq / "
                  "official | same indices (fp32) |", "|---|---|---|---|---|---|---|---|---|"]
        for name in ("llamagen", "taming", "titok"):
            for dtype in dtypes:
                got = {}
                for impl in ("hf_vq", "official"):
                    for op in ("encode", "decode"):
                        params = {"name": name, "dtype": dtype, "op": op, "batch_size": batch_size,
                                  "image_size": image_size, "checkout": checkouts[name], "impl": impl}
                        got[impl, op] = (run("tokenizer", params, tokenizer_repeats)
                                         if impl == "hf_vq" or checkouts[name] else {"error": NOT_GIVEN})
                for op in ("encode", "decode"):
                    ours, official = got["hf_vq", op], got["official", op]
                    same = "-"
                    if op == "encode" and dtype == "float32" and ours.get("indices") and official.get("indices"):
                        a, b = ours["indices"], official["indices"]
                        same = f"{sum(x == y for x, y in zip(a, b)) / len(a):.1%}"
                    speed = f"{batch_size / ours['median']:.2f}" if "error" not in ours else "-"
                    lines.append(f"| {titles[name]} | {dtype} | {op} | {fmt_seconds(ours)} | {fmt_seconds(official)} "
                                 f"| {ratio(official, ours)} | {speed} | {fmt_memory(ours)} / {fmt_memory(official)} "
                                 f"| {same} |")
                    if dtype == "float32":
                        summary_rows.append(
                            f"| {titles[name]} {op}, batch {batch_size} at {image_size}, fp32 | hf_vq {speed} images/s; "
                            f"{versus('official code', official, ours)} |")
        lines.append("")

    # -- tokenizer training step ---------------------------------------------------------------
    if sections is None or "train_step" in sections:
        train = ({"image_size": 32, "batch": 1, "warmup": 1, "steps": 1} if quick else
                 {"image_size": args.train_image_size, "batch": args.train_batch, "warmup": 1, "steps": 3})
        # one case: our engine's steps and the official ones take turns (the same load for both)
        ours = run("tokenizer_train_step", {**train, "checkout": args.llamagen}, 1)
        official = summary(ours.get("official") or {"error": ours.get("error", NOT_GIVEN)})
        floor = ours["flops"] / flops_per_second if "error" not in ours else None

        def part(result, name):
            return f"{result[name]:.3g} s" if "error" not in result else "-"

        over_floor = f"{ours['median'] / floor:.1f}x" if floor else "-"
        lines += [f"## Tokenizer training step (LlamaGen VQ-16, batch {train['batch']} at "
                  f"{train['image_size']}x{train['image_size']})", "",
                  "One step = a generator update (L2 + LPIPS + codebook and commitment terms + hinge GAN at weight "
                  "0.5, backward, clip at 1, Adam) and a discriminator update (PatchGAN, hinge), the GAN on from "
                  "step 0, as `configs/imagenet256/vqgan-llamagen.yaml` (= `vq_train.py`'s defaults). hf_vq: the "
                  "engine running `TokenizerObjective` as `hf-vq train` does (its image-folder loader with ADM's "
                  "random crop, Accelerate, checks, logging; the final evaluation left out); official: "
                  "`vq_train.py`'s loop body on LlamaGen's `VQ_16` + `VQLoss`, single process, no DDP, fp32, "
                  "its `ImageFolder` loader. Same initial weights (the official ones, converted), same PatchGAN "
                  "weights, same JPEG folder, `num_workers=0` on both sides. **LPIPS: its VGG weights cannot be "
                  "downloaded here, so for timing only both sides get the same random VGG16 trunk (seeded) with "
                  "the `lpips` package's linear layers, injected by the benchmark** (into LlamaGen's `LPIPS` by "
                  "replacing its two download calls in the benchmark process). Seconds per step: median over "
                  f"the {train['steps']} timed steps after {train['warmup']} warm-up (data loading included); "
                  "generator / discriminator: the two updates alone. Floor: the step's FLOPs (counted by "
                  "`torch.utils.flop_counter` on our modules, forward + backward) at the matmul rate above.", "",
                  "| step | seconds per step | generator update | discriminator update | official / hf_vq "
                  "| floor | x floor |", "|---|---|---|---|---|---|---|",
                  f"| hf_vq engine (`hf-vq train`) | {fmt_seconds(ours)} | {part(ours, 'generator')} | "
                  f"{part(ours, 'discriminator')} | 1.00x | {f'{floor:.3g} s' if floor else '-'} | {over_floor} |",
                  f"| LlamaGen `vq_train.py` step | {fmt_seconds(official)} | {part(official, 'generator')} | "
                  f"{part(official, 'discriminator')} | {ratio(official, ours)} | | |", ""]
        crosscheck = ours.get("crosscheck") if "error" not in ours else None
        if crosscheck:
            ours_terms, their_terms = crosscheck["hf_vq"], crosscheck["official"]
            lines += [
                "Same loss on the same batch (the engine's first batch, the initial weights; LlamaGen's LPIPS in "
                "eval mode like ours: `vq_train.py`'s `vq_loss.train()` also turns on LPIPS's dropout): generator "
                f"loss hf_vq {ours_terms['generator']:.6f}, LlamaGen {their_terms['generator']:.6f} "
                f"(difference {abs(ours_terms['generator'] - their_terms['generator']):.1e}); discriminator loss "
                f"hf_vq {ours_terms['discriminator']:.6f}, LlamaGen {their_terms['discriminator']:.6f} "
                f"(difference {abs(ours_terms['discriminator'] - their_terms['discriminator']):.1e}; both scale the "
                "hinge loss by 0.5, `loss.discriminator_loss_weight` in our config).", ""]
        else:
            lines += ["Loss cross-check against LlamaGen: not run (" + (official.get("error", "") or NOT_GIVEN) + ").",
                      ""]
        summary_rows.append(
            f"| Tokenizer training step, LlamaGen VQ-16 + LPIPS + PatchGAN, batch {train['batch']} at "
            f"{train['image_size']} | hf_vq {fmt_seconds(ours)} per step ({over_floor} the FLOP floor); "
            f"{versus('LlamaGen vq_train.py step', official, ours)} |")

    # -- GPT training step ---------------------------------------------------------------------
    if sections is None or "training" in sections:
        gpt = ({"vocab": 256, "tokens": 64, "hidden": 64, "layers": 2, "heads": 4, "batch": 8} if quick else
               {"vocab": 1024, "tokens": 256, "hidden": 256, "layers": 4, "heads": 4, "batch": 16})
        step_repeats = 3 if quick else 10
        plain = run("gpt_step", {**gpt, "impl": "hf_vq", "checkout": args.llamagen}, step_repeats)
        official = (run("gpt_step", {**gpt, "impl": "official", "checkout": args.llamagen}, step_repeats)
                    if args.llamagen else {"error": NOT_GIVEN})
        engine = run("gpt_engine", {**gpt, "repeats": step_repeats}, 1)
        lines += [f"## GPT training step ({gpt['layers']} layers, hidden {gpt['hidden']}, {gpt['tokens']} tokens, "
                  f"batch {gpt['batch']})", "",
                  "plain: forward + backward + clip + AdamW on our `LlamaGenGPTModel`; official: the same step on "
                  "LlamaGen's `Transformer` as `train_c2i.py` calls it (same weights, converted); engine: "
                  "`hf-vq train-ar`'s loop (data loader, Accelerate, checks, logging), seconds per step, median over "
                  "the timed steps of one run.", "",
                  "| step | seconds | vs plain hf_vq |", "|---|---|---|",
                  f"| hf_vq plain | {fmt_seconds(plain)} | 1.00x |",
                  f"| official (train_c2i step) | {fmt_seconds(official)} | {ratio(official, plain)} |",
                  f"| hf_vq engine | {fmt_seconds(engine)} | {ratio(engine, plain)} |", ""]
        summary_rows.append(f"| GPT training step ({gpt['layers']} layers, hidden {gpt['hidden']}, batch {gpt['batch']}) "
                            f"| {versus('LlamaGen train_c2i step', official, plain)}; our engine's step takes "
                            f"{ratio(engine, plain)} our plain loop's time |")

    # -- AR generation -------------------------------------------------------------------------
    if sections is None or "generation" in sections:
        gen = ({"vocab": 256, "tokens": 16, "hidden": 64, "layers": 2, "heads": 4, "batch": 2} if quick else
               {"vocab": 1024, "tokens": 256, "hidden": 256, "layers": 4, "heads": 4, "batch": 8})
        gen_repeats = 2 if quick else 3
        cached = run("generate", {**gen, "impl": "hf_vq", "checkout": args.llamagen}, gen_repeats)
        recompute = run("generate", {**gen, "impl": "hf_vq_no_cache", "checkout": args.llamagen}, 1 if not quick else 2)
        official = (run("generate", {**gen, "impl": "official", "checkout": args.llamagen}, gen_repeats)
                    if args.llamagen else {"error": NOT_GIVEN})

        def tokens_per_second(result):
            return f"{result['tokens_generated'] / result['median']:.0f}" if "error" not in result else "-"

        lines += [f"## AR generation ({gen['layers']} layers, hidden {gen['hidden']}, {gen['tokens']} tokens, "
                  f"batch {gen['batch']} with CFG)", "",
                  "| generate | seconds | tokens/s | vs hf_vq KV cache |", "|---|---|---|---|",
                  f"| hf_vq, KV cache | {fmt_seconds(cached)} | {tokens_per_second(cached)} | 1.00x |",
                  f"| hf_vq, recompute the prefix | {fmt_seconds(recompute)} | {tokens_per_second(recompute)} | "
                  f"{ratio(recompute, cached)} |",
                  f"| LlamaGen `generate` | {fmt_seconds(official)} | {tokens_per_second(official)} | "
                  f"{ratio(official, cached)} |", ""]
        summary_rows.append(f"| AR generation, {gen['tokens']} tokens, batch {gen['batch']} + CFG | hf_vq "
                            f"{tokens_per_second(cached)} tokens/s; {versus('LlamaGen generate', official, cached)}; "
                            f"without the KV cache {ratio(recompute, cached)} the time |")

    # -- data pipeline -------------------------------------------------------------------------
    if sections is None or "data" in sections:
        data = ({"images": 16, "image_size": 32, "batch": 4} if quick else {"images": 256, "image_size": 256, "batch": 16})
        got = {impl: run("data_pipeline", {**data, "impl": impl}) for impl in ("hf_vq", "pil", "datasets_tv2", "decode_resize", "decode")}

        def images_per_second(result):
            return result["images"] / result["median"] if "error" not in result else None

        decode_rate = images_per_second(got["decode"])
        made = got["hf_vq"]
        photo_sizes = (f"{made['smallest_side']}-{made['largest_side']} px squares" if "error" not in made
                       else "squares of various sizes")

        def data_row(label, impl):
            result = got[impl]
            rate = images_per_second(result)
            share = f"{rate / decode_rate:.0%}" if rate and decode_rate else "-"
            peer = ratio(result, got["hf_vq"]) if not impl.startswith("decode") else "-"
            return f"| {label} | {fmt_seconds(result)} | {f'{rate:.0f}' if rate else '-'} | {peer} | {share} |"

        lines += [f"## Data pipeline ({data['images']} JPEGs -> {data['image_size']}x{data['image_size']} train crops, "
                  f"batch {data['batch']}, one process)", "",
                  "One pass over a folder of JPEG photographs (`bench_images.py`: random crops of scikit-image's "
                  f"photographs, here {photo_sizes}, quality 90) with a train transform to the same output size, "
                  "every loader with "
                  "`num_workers=0`. hf_vq: `build_dataloaders` as `hf-vq train` builds it for `data.train_data_dir` "
                  "(datasets imagefolder, random 80-100% square crop, BICUBIC, flip, per-image seeded generators); "
                  "PIL loop: `Image.open`, the same crop with `random`, `torch.stack`; datasets + torchvision v2: "
                  "`load_dataset('imagefolder')` + `set_transform(v2.Compose([ToImage, RandomResizedCrop(square, "
                  "0.64-1 of the area), RandomHorizontalFlip, ToDtype, Normalize]))` + `DataLoader` (the dataset "
                  "built before the timing; it resizes with torch's antialiased bilinear on tensors where hf_vq and "
                  "the PIL loop use PIL's BICUBIC, the ADM protocol's filter: not the same pixels). Limits: decoding the same "
                  "JPEGs with PIL alone (`Image.open(path).convert('RGB')`), and the decode plus the PIL loop's crop, "
                  "BICUBIC resize and flip without anything else (no tensors): the work that makes these pixels, so no "
                  "loader that gives them is faster (v2 can be: its resize is a different, vectorised filter).", "",
                  "| loader | seconds per pass | images/s | peer / hf_vq | of the JPEG decode rate |",
                  "|---|---|---|---|---|",
                  data_row("hf_vq (`hf-vq train`'s loader)", "hf_vq"), data_row("plain PIL loop", "pil"),
                  data_row("datasets + torchvision.transforms.v2", "datasets_tv2"),
                  data_row("JPEG decode + PIL crop, BICUBIC resize, flip (limit for these pixels)", "decode_resize"),
                  data_row("JPEG decode alone (limit)", "decode"), ""]
        ours_rate, pixels_rate = images_per_second(got["hf_vq"]), images_per_second(got["decode_resize"])
        summary_rows.append(
            f"| Data pipeline, {data['images']} JPEGs -> {data['image_size']} px train crops, one process | hf_vq "
            f"{f'{ours_rate:.0f}' if ours_rate else '-'} images/s"
            + (f" ({ours_rate / decode_rate:.0%} of the bare JPEG decode rate" if ours_rate and decode_rate else "")
            + (f", {ours_rate / pixels_rate:.0%} of decode + BICUBIC resize alone" if ours_rate and pixels_rate else "")
            + (")" if ours_rate and decode_rate else "")
            + f"; {versus('a plain PIL loop', got['pil'], got['hf_vq'])}, "
            f"{versus('datasets + torchvision v2', got['datasets_tv2'], got['hf_vq'])} |")

    # -- FID features ----------------------------------------------------------------------------
    if sections is None or "metrics" in sections:
        fid = ({"images": 1, "image_size": 64, "batch": 1} if quick else {"images": 16, "image_size": 256, "batch": 8})
        fid_repeats = 1 if quick else min(repeats, 3)
        check = run("fid_check", {"images": 1 if quick else 2, "image_size": fid["image_size"]}, 1)
        got = {impl: run("fid_features", {**fid, "impl": impl}, fid_repeats)
               for impl in ("hf_vq", "hf_vq_torch_fidelity", "torch_fidelity")}
        flops_per_image = check["check"]["flops_per_image"] if "error" not in check else None
        floor = flops_per_image * fid["images"] / flops_per_second if flops_per_image else None

        def fid_row(label, impl):
            result = got[impl]
            rate = f"{fid['images'] / result['median']:.2f}" if "error" not in result else "-"
            over = f"{result['median'] / floor:.1f}x" if floor and "error" not in result else "-"
            return f"| {label} | {fmt_seconds(result)} | {rate} | {ratio(got['torch_fidelity'], result)} | {over} |"

        lines += [f"## FID feature extraction ({fid['images']} image{'s' if fid['images'] > 1 else ''} of "
                  f"{fid['image_size']}x{fid['image_size']}, "
                  f"batch {fid['batch']})", "",
                  "2048-d pool3 features of the same photographs (uint8; ours get them as floats in [0, 1], as the "
                  "evaluation feeds them). hf_vq: `load_fid_inception` (the pytorch-fid port: torch's bilinear "
                  "resize to 299) and `load_torch_fidelity_inception` (our torch-fidelity protocol: uint8 rounding "
                  "+ the package's network); torch-fidelity: `FeatureExtractorInceptionV3('inception-v3-compat', "
                  "['2048'])` on the uint8 images. **The Inception weights cannot be downloaded here: for timing "
                  "only, one file of random weights (seeded, He-initialised convolutions) in the layout both read "
                  "is given to both** (`feature_extractor_weights_path` / `weights_path`). Floor: the network's "
                  + (f"{flops_per_image / 1e9:.1f} GFLOP per image" if flops_per_image else "FLOPs")
                  + " (`torch.utils.flop_counter`) at the matmul rate above.", "",
                  "| extractor | seconds | images/s | torch-fidelity / this | x floor |", "|---|---|---|---|---|",
                  fid_row("hf_vq, pytorch-fid port (`load_fid_inception`)", "hf_vq"),
                  fid_row("hf_vq, torch-fidelity protocol", "hf_vq_torch_fidelity"),
                  fid_row("torch-fidelity package", "torch_fidelity"), ""]
        if "error" not in check:
            values = check["check"]
            lines += [f"Same features? With the same weights, at 299x299 (both resizes are the identity) and inputs "
                      f"matched for the normalisation (ours x = u / 256, so 2x - 1 = (u - 128) / 128), our pytorch-fid "
                      f"port and torch-fidelity's network differ by at most {values['pytorch_fid_port_at_299']:.1e} "
                      f"(features of mean magnitude {values['feature_scale']:.2f}): the same network. At "
                      f"{fid['image_size']} px the two resizes differ (torch's bilinear vs TensorFlow 1's) and so do "
                      f"the features (max {values['pytorch_fid_port_at_256']:.1e}); our torch-fidelity protocol "
                      f"gives the package's features (max difference {values['torch_fidelity_protocol']:.1e}).", ""]
        summary_rows.append(
            f"| FID Inception features, {fid['images']} image{'s' if fid['images'] > 1 else ''} at {fid['image_size']} px "
            "| hf_vq "
            + (f"{fid['images'] / got['hf_vq']['median']:.2f} images/s" if "error" not in got["hf_vq"] else "-")
            + f" ({fid_row('', 'hf_vq').split('|')[-2].strip()} the FLOP floor); "
            f"{versus('torch-fidelity', got['torch_fidelity'], got['hf_vq'])} |")

    # -- import time ---------------------------------------------------------------------------
    if sections is None or "import" in sections:
        import_repeats = 2 if quick else 3
        hf = run("import", {"statement": "import hf_vq"}, import_repeats)
        torch_import = run("import", {"statement": "import torch"}, import_repeats)
        lines += ["## Import time (fresh interpreter, including its start-up)", "",
                  "| statement | seconds |", "|---|---|",
                  f"| `import hf_vq` | {fmt_seconds(hf)} |", f"| `import torch` | {fmt_seconds(torch_import)} |", ""]
        summary_rows.append(f"| `import hf_vq` (fresh interpreter) | {fmt_seconds(hf)}; `import torch` "
                            f"{fmt_seconds(torch_import)} |")

    all_sections = ("search", "quantizers", "tokenizers", "train_step", "training", "generation", "data", "metrics",
                    "import")
    skipped = [name for name in all_sections if sections is not None and name not in sections]
    lines += ["## Not measured here", "",
              *([f"- Sections not run in this run (`--only {args.only}`): {', '.join(skipped)}."] if skipped else []),
              "- GPU figures (no GPU on this machine).",
              *([] if args.bf16 else [
                  "- Tokenizers in bfloat16 (`--bf16`): this CPU has no bf16 instructions; in a trial at batch 1, "
                  "32x32 every bf16 encode/decode, ours and official alike, took 10-40x its fp32 time (TiTok's official "
                  "code refuses bf16 weights: it computes some products in float32)."]),
              "- LPIPS and FID with their real weights (VGG16, Inception; not downloadable here): the tokenizer "
              "training step and the FID extraction ran on random weights of the same networks, which costs the "
              "same time but says nothing about the values.", ""]
    lines += ["## Summary", "", SUMMARY_START, "| benchmark | result |", "|---|---|", *summary_rows, SUMMARY_END, ""]
    lines[load_index] = load_line(load_before)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines)
    (output_dir / "RESULTS.md").write_text(text)
    plot(text, output_dir / "results.png")
    print(f"wrote {output_dir / 'RESULTS.md'} and {output_dir / 'results.png'}")


SUMMARY_START = "<!-- summary:start -->"
SUMMARY_END = "<!-- summary:end -->"


def _is_ratio_column(name: str) -> bool:
    """'cdist / hf_vq', 'torch-fidelity / this', 'vs plain hf_vq': a peer's time over ours (not 'hf_vq / floor')."""
    return name.endswith((" / hf_vq", " / this")) or name.startswith("vs ")


def ratio_bars(results_text: str) -> list:
    """``(label, value)`` for every peer-over-hf_vq time ratio in RESULTS.md's tables (what ``plot`` draws).

    Tables whose rows are cases (quantizer, tokenizer: the leading cells before the ``hf_vq`` column) give one bar
    per case and ratio column, labelled by the case and the peer. Tables whose rows are implementations (loader,
    training step, generation, FID) give one bar per peer row; the reference row itself (an hf_vq row in a
    '... / hf_vq' or 'vs ...' column, the named peer's own row in a 'peer / this' column) is a 1.00x by definition
    and is left out, and so are our own variants compared with each other (hf_vq engine vs plain hf_vq loop).
    """
    bars = []
    section, header = "", None
    for line in results_text.splitlines():
        if line.startswith("## "):
            section, header = line[3:].split(" (")[0], None
            continue
        if not line.startswith("|"):
            header = None  # a table ends at the first line that is not a row
            continue
        cells = [cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(line) <= set("|-: "):
            continue
        case_columns = header.index("hf_vq") if "hf_vq" in header else 0
        for name, cell in zip(header, cells):
            if not _is_ratio_column(name) or not cell.endswith("x"):
                continue
            try:
                value = float(cell[:-1])
            except ValueError:
                continue
            if case_columns:  # rows are cases, columns the peers
                label = f"{section}: {' '.join(cells[:case_columns])}, {name.split(' / ')[0]}"
            elif name.endswith(" / this"):  # rows are ours, the column names the peer
                peer = name.split(" / ")[0]
                if cells[0].startswith(peer):
                    continue
                label = f"{section}: {peer} vs {cells[0]}"
            else:  # rows are the peers, the reference is hf_vq
                if cells[0].startswith("hf_vq"):
                    continue
                label = f"{section}: {cells[0]}"
            bars.append((label, value))
    return bars


def plot(results_text: str, path: Path) -> None:
    """Bar chart of every peer / hf_vq time ratio in the tables (``ratio_bars``; log scale, > 1: hf_vq faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = ratio_bars(results_text)
    labels, values = [label for label, _ in bars], [value for _, value in bars]
    figure, axis = plt.subplots(figsize=(13, 0.32 * max(len(values), 4) + 1.2))
    axis.barh(range(len(values)), values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
    for row, value in enumerate(values):
        axis.text(value, row, f" {value:.2f}x", va="center", fontsize=7)
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_xscale("log")
    if values:
        axis.set_xlim(min(min(values), 1.0) / 1.5, max(max(values), 1.0) * 2.5)  # room for the value labels
    axis.set_yticks(range(len(values)), labels, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("peer's time / hf_vq's time (log scale; > 1: hf_vq is faster)")
    figure.tight_layout()  # widens the left margin to the longest label
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
