"""GPU figures of the benchmark suite: hf_vq against the official code on one CUDA device.

    python benchmarks/gpu.py --llamagen PATH --taming PATH --titok PATH [--output-dir DIR] [--quick]
        [--sections matmul,search,tokenizers,compile,train_step,gpt,generate] [--device cuda]

writes ``DIR/RESULTS_GPU.md`` and ``DIR/results_gpu.json`` (default ``benchmarks/``). The CPU report
(``run_all.py``) and this one are separate runs on separate machines: compare ratios within a report,
never seconds across them.

Every comparison takes turns: one call of each side per round, many rounds, the median of each side
(the spread is min-max), so both sides see the same clocks and the same machine. Device work is
asynchronous: every timed call ends with ``torch.cuda.synchronize()``. Peak memory is
``torch.cuda.max_memory_allocated()`` during one call minus the memory allocated before it (the
extra memory the call needs; weights and inputs are not counted).

Utilisation: FLOPs of one call are counted by ``torch.utils.flop_counter`` on our side (the two
sides compute the same network) and divided by the call's median time and by the matmul rate this
run measured in the same precision (``matmul`` section; fp32 rows use PyTorch's defaults: matmuls in
strict fp32, convolutions through cuDNN with TF32 allowed, so their utilisation is given against the
fp32 matmul rate and can exceed 100% where convolutions dominate; bf16 rows: ``torch.autocast``
with bfloat16 on both sides, against the bf16 rate).

Sections:

* ``matmul``: 8192^3 products in fp32 (TF32 off), TF32 and bf16: the machine's limits;
* ``search``: the nearest-code search, ``VectorQuantizer`` vs ``torch.cdist`` + argmin and
  vector-quantize-pytorch (when installed), forward and forward+backward, 16,384 and 100,000 codes,
  with the floor ``2 N K (d + 1)`` FLOPs / fp32 matmul rate;
* ``tokenizers``: encode and decode of LlamaGen VQ-16, taming VQGAN f16-16384 and TiTok-S-128 at
  256x256, ours vs the official code on the same converted weights (as ``run_all.py``), batch 8 and
  64, fp32 and bf16, with the share of equal indices;
* ``compile``: the same at batch 8 in bf16 with ``torch.compile`` (default mode) on both sides
  (compile time reported apart);
* ``train_step``: the VQ-16 tokenizer training step (LPIPS + PatchGAN), our engine vs LlamaGen's
  ``vq_train.py`` loop body (``tokenizer_training_step.py``), batch 16, fp32 and bf16;
* ``gpt``: GPT-B class-conditional training step at 256 tokens, batch 32, bf16: our engine
  (``hf-vq train-ar``), a plain loop on our model and LlamaGen's ``train_c2i.py`` step (fused AdamW,
  as it builds it), eager and compiled (``train_c2i.py`` compiles by default);
* ``generate``: KV-cached generation of 256 tokens with CFG, GPT-B, batch 8: ours vs LlamaGen's
  ``generate``, tokens/s.
"""

import argparse
import datetime
import functools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run_all import _build_tokenizer, use_checkout  # noqa: E402

SECTIONS = ("matmul", "search", "tokenizers", "compile", "train_step", "gpt", "generate")


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def take_turns(calls: dict, rounds: int, device, warmup: int = 2) -> dict:
    """``{name: [seconds per call]}``: each round calls every side once, in turn."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    sync(device)
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            sync(device)
            start = time.perf_counter()
            call()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def seconds_of_one_call(call, device) -> float:
    """Wall seconds of one synchronised call (the first call of a compiled function: its compilation)."""
    sync(device)
    start = time.perf_counter()
    call()
    sync(device)
    return time.perf_counter() - start


def extra_peak_mb(call, device):
    """Memory one call allocates at its peak beyond what was allocated before it (MiB); None off CUDA."""
    if torch.device(device).type != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    call()
    sync(device)
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def ran_compiled(call) -> bool:
    """Whether one call of ``call`` ran a graph compiled by inductor (``torch.compile``'s default backend:
    the profiler records a "## Call CompiledFxGraph" event for each). Dynamo falls back to eager without an
    error, e.g. for a frame it has given up on, and then still records its "Torch-Compiled Region" around the
    eager code, so only the graph's own event tells: a compiled row is a compiled figure only if this holds."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        call()
    return any(event.name.startswith("## Call CompiledFxGraph") for event in profile.events())


def count_flops(call) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        call()
    return float(counter.get_total_flops())


def stats(seconds: list) -> dict:
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds), "runs": len(seconds)}


def autocast(device, precision: str):
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------
def section_matmul(args) -> dict:
    size = 1024 if args.quick else 8192
    rates = {}
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                              ("bf16", torch.bfloat16, False)):
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(size, size, device=args.device, dtype=dtype)
        b = torch.randn(size, size, device=args.device, dtype=dtype)
        seconds = take_turns({name: lambda a=a, b=b: torch.mm(a, b)}, rounds=3 if args.quick else 10, device=args.device)[name]
        torch.backends.cuda.matmul.allow_tf32 = previous
        rates[name] = {"size": size, **stats(seconds), "flop_per_s": 2 * size**3 / statistics.median(seconds)}
    return rates


def _search_row(args, rates, z, codebook, mode, VectorQuantize) -> dict:
    """One row of the search section: hf_vq, cdist + argmin and (when installed) vector-quantize-pytorch."""
    from hf_vq.quantizers import VectorQuantizer

    (n, d), k = z.shape, codebook.shape[0]
    backward = mode == "forward+backward"
    x = z.clone().requires_grad_(backward)
    vq = VectorQuantizer(d, k, codebook_init="normal").to(args.device).train(backward)
    with torch.no_grad():
        vq.codebook.copy_(codebook)
    cdist_codebook = codebook.clone().requires_grad_(backward)

    def ours():
        with torch.set_grad_enabled(backward):
            out = vq(x)
            if backward:
                (out.quantized.sum() + out.loss).backward()
            return out.indices

    def cdist():
        with torch.set_grad_enabled(backward):
            indices = torch.cdist(x, cdist_codebook).argmin(1)
            if backward:
                ((x - cdist_codebook[indices]) ** 2).mean().backward()
            return indices

    calls = {"hf_vq": ours, "cdist": cdist}
    if VectorQuantize is not None:
        peer = VectorQuantize(dim=d, codebook_size=k, commitment_weight=0.25, learnable_codebook=True,
                              ema_update=False).to(args.device).train(backward)
        with torch.no_grad():
            peer._codebook.embed.copy_(codebook[None])

        def vqp():
            with torch.set_grad_enabled(backward):
                q, indices, loss = peer(x[None])
                if backward:
                    (q.sum() + loss.sum()).backward()
                return indices[0]

        calls["vector-quantize-pytorch"] = vqp
    row = {"n": n, "k": k, "d": d, "mode": mode,
           "floor_seconds": 2 * n * k * (d + 1) / rates["fp32"]["flop_per_s"]}
    if not backward:  # same indices as float64 brute force, up to ties
        with torch.no_grad():
            indices = ours()
            best = torch.empty(n, dtype=torch.float64, device=args.device)
            chosen = torch.empty_like(best)
            for start in range(0, n, 4096):
                distances = torch.cdist(z[start:start + 4096].double(), codebook.double()) ** 2
                best[start:start + 4096] = distances.min(1).values
                chosen[start:start + 4096] = distances.gather(1, indices[start:start + 4096, None])[:, 0]
            row["not_nearest_in_float64"] = int(((chosen - best) > 1e-4 * best.clamp(min=1)).sum())
    times = take_turns(calls, rounds=3 if args.quick else 10, device=args.device)
    row["results"] = {name: {**stats(t), "extra_peak_mb": extra_peak_mb(calls[name], args.device)}
                      for name, t in times.items()}
    return row


def section_search(args, rates) -> list:
    try:
        from vector_quantize_pytorch import VectorQuantize
    except ImportError:
        VectorQuantize = None
    d = 8
    shapes = [(1024, 1024)] if args.quick else [(16384, 16384), (65536, 16384), (16384, 100_000)]
    rows = []
    for n, k in shapes:
        generator = torch.Generator().manual_seed(0)
        z, codebook = torch.randn(n, d, generator=generator).to(args.device), torch.randn(k, d, generator=generator)
        codebook = codebook.to(args.device)
        for mode in ("forward", "forward+backward"):
            row = _search_row(args, rates, z, codebook, mode, VectorQuantize)
            rows.append(row)
            print(f"search {n} x {k} {mode}: " + ", ".join(
                f"{name} {r['median'] * 1e3:.2f} ms" for name, r in row["results"].items()), flush=True)
    return rows


def _tokenizer_pair(args, name, batch_size, image_size):
    """(ours, official) as (encode, decode, pixel_values, indices), the official built from its checkout."""
    checkout = getattr(args, name)
    ours = _build_tokenizer(name, "hf_vq", torch.float32, batch_size, image_size, checkout, device=args.device)
    official = _build_tokenizer(name, "official", torch.float32, batch_size, image_size, checkout,
                                device=args.device) if checkout else None
    return ours, official


def section_tokenizers(args, rates, compiled: bool) -> list:
    image_size = 64 if args.quick else 256
    batches = (2,) if args.quick else ((8,) if compiled else (8, 64))
    precisions = ("bf16",) if compiled else ("fp32", "bf16")
    if args.quick and torch.device(args.device).type == "cpu":
        precisions = ("fp32",)  # CPU smoke test: CPUs without bf16 instructions take minutes here
    rows = []
    for name in args.tokenizers.split(","):
        for batch_size in batches:
            ours, official = _tokenizer_pair(args, name, batch_size, image_size)
            sides = {"hf_vq": ours, **({"official": official} if official else {})}
            same = None
            if official:
                with torch.no_grad():
                    a = ours[0](ours[2]).reshape(-1)
                    b = official[0](official[2]).reshape(-1)
                same = float((a == b).double().mean())
            for precision in precisions:
                for op in ("encode", "decode"):
                    calls, eager_calls = {}, {}
                    compile_seconds = {}
                    if compiled:
                        # A clean cache per row: our encode / decode closures share one code object across
                        # tokenizers, and a recompile of it (new model type) could turn on dynamic shapes.
                        torch._dynamo.reset()
                    for side, (encode, decode, pixel_values, indices) in sides.items():
                        function = encode if op == "encode" else decode
                        argument = pixel_values if op == "encode" else indices

                        def call(function=function, argument=argument, precision=precision):
                            with torch.no_grad(), autocast(args.device, precision):
                                return function(argument)

                        eager_calls[side] = call
                        if compiled:
                            call = functools.partial(call, function=torch.compile(function))
                            compile_seconds[side] = seconds_of_one_call(call, args.device)
                        calls[side] = call
                    # FLOPs from the eager call: running a compiled function under the counter's dispatch
                    # mode made dynamo give up on the frame on the H100's torch (2.11), so every later call
                    # of our side ran eager (the official side, never counted, stayed compiled).
                    flops = count_flops(eager_calls["hf_vq"])
                    times = take_turns(calls, rounds=3 if args.quick else 20, device=args.device)
                    row = {"tokenizer": name, "batch": batch_size, "precision": precision, "op": op,
                           "compiled": compiled, "same_indices": same, "flops": flops, "results": {}}
                    for side, t in times.items():
                        rate = rates["bf16" if precision == "bf16" else "fp32"]["flop_per_s"]
                        row["results"][side] = {**stats(t), "images_per_s": batch_size / statistics.median(t),
                                                "utilisation": flops / statistics.median(t) / rate,
                                                "extra_peak_mb": extra_peak_mb(calls[side], args.device),
                                                **({"compile_seconds": compile_seconds[side],
                                                    "ran_compiled": ran_compiled(calls[side])} if compiled else {})}
                    rows.append(row)
                    print(f"{name} b{batch_size} {precision} {op}{' compiled' if compiled else ''}: " + ", ".join(
                        f"{side} {r['images_per_s']:.0f} img/s" for side, r in row["results"].items()), flush=True)
            del ours, official, sides
            if torch.device(args.device).type == "cuda":
                torch.cuda.empty_cache()
    return rows


def section_train_step(args, rates) -> list:
    rows = []
    for precision in ("no", "bf16"):
        params = {"image_size": 64 if args.quick else 256, "batch": 2 if args.quick else 16,
                  "warmup": 1 if args.quick else 3, "steps": 2 if args.quick else 12, "checkout": args.llamagen,
                  "device": args.device, "mixed_precision": precision, "workers": 0 if args.quick else 6}
        # One process per precision: Accelerate's state (mixed precision included) is set once per process.
        completed = subprocess.run([sys.executable, str(HERE / "tokenizer_training_step.py"), json.dumps(params)],
                                   check=True, stdout=subprocess.PIPE, text=True)
        measured = json.loads(completed.stdout.strip().splitlines()[-1])
        ours = stats(measured["seconds"])
        rate = rates["bf16" if precision == "bf16" else "fp32"]["flop_per_s"]
        row = {"precision": "fp32" if precision == "no" else precision, "batch": params["batch"],
               "flops": measured["flops"], "crosscheck": measured["crosscheck"],
               "results": {"hf_vq": {**ours, "generator": measured["generator"],
                                     "discriminator": measured["discriminator"]}}}
        official = measured["official"]
        if "times" in official:
            row["results"]["official"] = {**stats(official["times"]), "generator": official["generator"],
                                          "discriminator": official["discriminator"]}
        for result in row["results"].values():
            result["images_per_s"] = params["batch"] / result["median"]
            result["utilisation"] = measured["flops"] / result["median"] / rate
        rows.append(row)
        print(f"train step {row['precision']}: " + ", ".join(
            f"{side} {r['median'] * 1e3:.1f} ms" for side, r in row["results"].items()), flush=True)
    return rows


def _gpt_models(args, size):
    from hf_vq.convert.llamagen_gpt import convert_llamagen_gpt_state_dict
    from hf_vq.models.llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel

    config = LlamaGenGPTConfig(vocab_size=size["vocab"], block_size=size["tokens"], hidden_size=size["hidden"],
                               num_hidden_layers=size["layers"], num_attention_heads=size["heads"],
                               num_classes=1000)
    torch.manual_seed(0)
    ours = LlamaGenGPTModel(config)
    official = None
    if args.llamagen:
        use_checkout(args.llamagen)
        from autoregressive.models.gpt import ModelArgs, Transformer

        official = Transformer(ModelArgs(dim=size["hidden"], n_layer=size["layers"], n_head=size["heads"],
                                         vocab_size=size["vocab"], block_size=size["tokens"], num_classes=1000,
                                         cls_token_num=1, model_type="c2i"))
        ours.load_state_dict(convert_llamagen_gpt_state_dict(official.state_dict()))
    return config, ours, official


def _gpt_size(args):
    if args.quick:
        return {"hidden": 64, "layers": 2, "heads": 4, "vocab": 256, "tokens": 16, "batch": 2}
    return {"hidden": 768, "layers": 12, "heads": 12, "vocab": 16384, "tokens": 256, "batch": 32}  # GPT-B


def section_gpt(args, rates) -> list:
    from ar_training_speed import engine_step_times
    from datasets import Dataset

    from hf_vq.training.next_token_objective import decay_groups

    size = _gpt_size(args)
    config, ours, official = _gpt_models(args, size)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, size["vocab"], (size["batch"], size["tokens"]), generator=generator).to(args.device)
    labels = (torch.arange(size["batch"]) % 1000).to(args.device)
    rows = []
    for compiled in (False, True):
        calls, compile_seconds = {}, {}
        sides = {"hf_vq plain loop": ours, **({"official": official} if official is not None else {})}
        for side, model in sides.items():
            model = model.to(args.device).train()
            if side == "official":
                # train_c2i.py's creat_optimizer: decay on 2D+ weights, fused AdamW where available
                decay = [p for p in model.parameters() if p.dim() >= 2]
                no_decay = [p for p in model.parameters() if p.dim() < 2]
                optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                               {"params": no_decay, "weight_decay": 0.0}], lr=1e-4,
                                              betas=(0.9, 0.95), fused=True)

                def forward(model=model):
                    return model(cond_idx=labels, idx=ids[:, :-1], targets=ids)[1]
            else:
                optimizer = torch.optim.AdamW(decay_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95),
                                              fused=torch.device(args.device).type == "cuda")

                def forward(model=model):
                    return model(input_ids=ids[:, :-1], class_labels=labels, labels=ids).loss
            runner = torch.compile(model) if compiled else model
            if compiled:
                forward = (lambda runner=runner: runner(cond_idx=labels, idx=ids[:, :-1], targets=ids)[1]) \
                    if side == "official" else \
                    (lambda runner=runner: runner(input_ids=ids[:, :-1], class_labels=labels, labels=ids).loss)

            def step(forward=forward, model=model, optimizer=optimizer):
                with autocast(args.device, "bf16"):
                    loss = forward()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            if compiled:
                compile_seconds[side] = seconds_of_one_call(step, args.device)
            calls[side] = step
        flops = count_flops(lambda: (lambda loss: loss.backward())(
            ours(input_ids=ids[:, :-1], class_labels=labels, labels=ids).loss)) if not compiled else rows[0]["flops"]
        ours.zero_grad(set_to_none=True)
        times = take_turns(calls, rounds=3 if args.quick else 15, device=args.device)
        row = {"compiled": compiled, "precision": "bf16", "size": size, "flops": flops, "results": {}}
        for side, t in times.items():
            row["results"][side] = {**stats(t), "utilisation": flops / statistics.median(t) / rates["bf16"]["flop_per_s"],
                                    "tokens_per_s": size["batch"] * size["tokens"] / statistics.median(t),
                                    **({"compile_seconds": compile_seconds[side]} if compiled else {})}
        rows.append(row)
        print(f"gpt step{' compiled' if compiled else ''}: " + ", ".join(
            f"{side} {r['median'] * 1e3:.1f} ms" for side, r in row["results"].items()), flush=True)
    # the engine (hf-vq train-ar's loop), eager, bf16: Accelerate's autocast
    with tempfile.TemporaryDirectory() as workdir:
        rows_of_ids = torch.randint(0, size["vocab"], (8 * size["batch"], size["tokens"]), generator=generator)
        tokens = Dataset.from_dict({"input_ids": rows_of_ids.tolist(),
                                    "class_labels": [i % 1000 for i in range(8 * size["batch"])]})
        engine_args = argparse.Namespace(batch_size=size["batch"], steps=3 if args.quick else 15, warmup=2,
                                         mixed_precision="bf16", device=args.device)
        seconds = engine_step_times(config, tokens, engine_args, Path(workdir))
    rows[0]["results"]["hf_vq engine"] = {**stats(seconds),
                                          "utilisation": rows[0]["flops"] / statistics.median(seconds)
                                          / rates["bf16"]["flop_per_s"],
                                          "tokens_per_s": size["batch"] * size["tokens"] / statistics.median(seconds)}
    print(f"gpt engine step: {statistics.median(seconds) * 1e3:.1f} ms", flush=True)
    return rows


def section_generate(args) -> list:
    from hf_vq.generation import generate

    size = dict(_gpt_size(args), batch=2 if args.quick else 8)
    config, ours, official = _gpt_models(args, size)
    ours = ours.to(args.device).eval()
    labels = (torch.arange(size["batch"]) % 1000).to(args.device)
    calls = {}

    def run_ours():
        with torch.no_grad():
            generate(ours, labels, guidance_scale=2.0, top_k=size["vocab"],
                     generator=torch.Generator(args.device).manual_seed(0))

    calls["hf_vq"] = run_ours
    if official is not None:
        from autoregressive.models.generate import generate as official_generate

        official = official.to(args.device).eval()

        def run_official():
            with torch.no_grad():
                official_generate(official, labels, size["tokens"], cfg_scale=2.0, cfg_interval=-1, temperature=1.0,
                                  top_k=size["vocab"], top_p=1.0, sample_logits=True)

        calls["official"] = run_official
    times = take_turns(calls, rounds=2 if args.quick else 5, device=args.device, warmup=1)
    row = {"size": size, "results": {}}
    for side, t in times.items():
        row["results"][side] = {**stats(t), "tokens_per_s": size["batch"] * size["tokens"] / statistics.median(t)}
    print("generate: " + ", ".join(f"{side} {r['tokens_per_s']:.0f} tokens/s" for side, r in row["results"].items()),
          flush=True)
    return [row]


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def _ms(result: dict) -> str:
    return f"{result['median'] * 1e3:.2f} ms ({result['min'] * 1e3:.2f}-{result['max'] * 1e3:.2f})"


def _ratio(peer: dict, ours: dict) -> str:
    return f"{peer['median'] / ours['median']:.2f}x"


def _mb(value) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


SUMMARY_START, SUMMARY_END = "<!-- gpu-summary:start -->", "<!-- gpu-summary:end -->"


def summary(results: dict) -> list:
    """The headline rows (README's GPU table): hf_vq's figure, the peer's, and the peer's time over ours."""
    rows = ["| what | hf_vq | peer | peer time / hf_vq time |", "|---|---|---|---|"]

    def add(what, ours, peer, peer_name, unit_of):
        rows.append(f"| {what} | {unit_of(ours)} | {peer_name}: {unit_of(peer)} | {peer['median'] / ours['median']:.2f}x |")

    for key in ("tokenizers", "compile"):
        for row in results.get(key, []):
            official = row["results"].get("official")
            if row["batch"] == 8 and official:
                memory = ""
                if row["results"]["hf_vq"]["extra_peak_mb"] is not None:
                    memory = (f", memory {row['results']['hf_vq']['extra_peak_mb']:.0f} vs "
                              f"{official['extra_peak_mb']:.0f} MiB")
                eager_fallback = any(r.get("ran_compiled") is False for r in row["results"].values())
                add(f"{row['tokenizer']} {row['op']}, batch 8, {row['precision']}"
                    f"{', torch.compile' if row['compiled'] else ''}{' (a side ran eager)' if eager_fallback else ''}"
                    f"{memory}", row["results"]["hf_vq"], official,
                    "official", lambda r: f"{r['images_per_s']:.0f} img/s")
    for row in results.get("train_step", []):
        if "official" in row["results"]:
            add(f"VQ-16 training step (LPIPS + PatchGAN), batch {row['batch']}, {row['precision']}",
                row["results"]["hf_vq"], row["results"]["official"], "vq_train.py",
                lambda r: f"{r['images_per_s']:.0f} img/s")
    for row in results.get("gpt", []):
        if "official" in row["results"]:
            add(f"GPT-B training step, bf16{', torch.compile' if row['compiled'] else ''} (plain loop)",
                row["results"]["hf_vq plain loop"], row["results"]["official"], "train_c2i.py",
                lambda r: f"{r['tokens_per_s']:.0f} tokens/s")
        if "hf_vq engine" in row["results"]:
            add("GPT-B training step, bf16: `hf-vq train-ar`'s engine vs our plain loop",
                row["results"]["hf_vq engine"], row["results"]["hf_vq plain loop"], "plain loop",
                lambda r: f"{r['tokens_per_s']:.0f} tokens/s")
    for row in results.get("generate", []):
        if "official" in row["results"]:
            add(f"KV-cached generation, GPT-B, batch {row['size']['batch']}", row["results"]["hf_vq"],
                row["results"]["official"], "LlamaGen generate", lambda r: f"{r['tokens_per_s']:.0f} tokens/s")
    for row in results.get("search", []):
        if row["k"] == 100_000 and row["mode"] == "forward":
            for peer in ("cdist", "vector-quantize-pytorch"):
                if peer in row["results"]:
                    add(f"nearest-code search {row['n']:,} x {row['k']:,}, forward "
                        f"({row['results']['hf_vq']['median'] / row['floor_seconds']:.0f}x the FLOP floor)",
                        row["results"]["hf_vq"], row["results"][peer], peer, lambda r: f"{r['median'] * 1e3:.1f} ms")
    return rows


def report(results: dict) -> str:
    machine = results["machine"]
    lines = ["# hf_vq GPU benchmarks", "",
             f"Generated by `python benchmarks/gpu.py` on {machine['date']}: {machine['gpu']}, torch "
             f"{machine['torch']}, CUDA {machine['cuda']}, Python {machine['python']}"
             f"{' (--quick: smoke-test sizes, not figures)' if results['quick'] else ''}.",
             "Medians over turns taken in the same run (spread min-max). \"x\" columns: the peer's time over "
             "ours (above 1: ours is faster). Utilisation: counted FLOPs / time / the matmul rate of the same "
             "precision measured below.", ""]
    if results.get("measured"):
        lines += ["Sections by call (a report can join several calls on the same kind of machine, `--merge`): "
                  + "; ".join(f"{name}: {date}" for name, date in results["measured"].items()) + ".", ""]
    lines += ["## Summary", "", SUMMARY_START, *summary(results), SUMMARY_END, ""]
    if "matmul" in results:
        lines += ["## The machine's limits", "", "| precision | size | time | TFLOP/s |", "|---|---|---|---|"]
        for name, rate in results["matmul"].items():
            lines.append(f"| {name} | {rate['size']}^3 | {_ms(rate)} | {rate['flop_per_s'] / 1e12:.1f} |")
        lines.append("")
    if "search" in results:
        lines += ["## Nearest-code search (d = 8)", "",
                  "| vectors x codes | mode | hf_vq | / floor | cdist + argmin | vector-quantize-pytorch | "
                  "hf_vq extra memory | cdist extra memory | not nearest (fp64) |", "|---|---|---|---|---|---|---|---|---|"]
        for row in results["search"]:
            r = row["results"]
            peer = r.get("vector-quantize-pytorch")
            lines.append(
                f"| {row['n']:,} x {row['k']:,} | {row['mode']} | {_ms(r['hf_vq'])} | "
                f"{r['hf_vq']['median'] / row['floor_seconds']:.1f}x | {_ms(r['cdist'])}, {_ratio(r['cdist'], r['hf_vq'])} | "
                f"{(_ms(peer) + ', ' + _ratio(peer, r['hf_vq'])) if peer else 'not installed'} | "
                f"{_mb(r['hf_vq']['extra_peak_mb'])} | {_mb(r['cdist']['extra_peak_mb'])} | "
                f"{row.get('not_nearest_in_float64', '-')} |")
        lines.append("")
    for key, title in (("tokenizers", "Tokenizers, eager (256x256)"), ("compile", "Tokenizers, torch.compile (256x256)")):
        if key not in results:
            continue
        lines += [f"## {title}", "",
                  "| tokenizer | batch | precision | op | hf_vq images/s | utilisation | official images/s | "
                  "official / hf_vq time | hf_vq extra memory | official extra memory | same indices |"
                  + (" compile s (ours / official) |" if key == "compile" else ""),
                  "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if key == "compile" else "")]
        for row in results[key]:
            ours, official = row["results"]["hf_vq"], row["results"].get("official")
            same = "-" if row["same_indices"] is None else f"{row['same_indices']:.1%}"
            line = (f"| {row['tokenizer']} | {row['batch']} | {row['precision']} | {row['op']} | "
                    f"{ours['images_per_s']:.0f} | {ours['utilisation']:.0%} | "
                    f"{official['images_per_s']:.0f} | {_ratio(official, ours)} | " if official else
                    f"| {row['tokenizer']} | {row['batch']} | {row['precision']} | {row['op']} | "
                    f"{ours['images_per_s']:.0f} | {ours['utilisation']:.0%} | official code not given | - | ")
            line += f"{_mb(ours['extra_peak_mb'])} | {_mb(official['extra_peak_mb']) if official else '-'} | {same} |"
            if key == "compile":
                def seconds(r):  # rows of earlier runs have no ran_compiled
                    return f"{r['compile_seconds']:.0f}" + (" (ran eager)" if r.get("ran_compiled") is False else "")

                line += f" {seconds(ours)} / {seconds(official)} |" if official else f" {seconds(ours)} |"
            lines.append(line)
        lines.append("")
    if "train_step" in results:
        lines += ["## Tokenizer training step (LlamaGen VQ-16 + LPIPS + PatchGAN, 256x256)", "",
                  "LPIPS on a seeded random VGG, the same on both sides (timing only); loader processes: 6 a side.", "",
                  "| precision | batch | side | step | images/s | utilisation | generator part | discriminator part | "
                  "official / hf_vq time |", "|---|---|---|---|---|---|---|---|---|"]
        for row in results["train_step"]:
            ours = row["results"]["hf_vq"]
            for side, r in row["results"].items():
                lines.append(f"| {row['precision']} | {row['batch']} | {side} | {_ms(r)} | {r['images_per_s']:.1f} | "
                             f"{r['utilisation']:.0%} | {r['generator'] * 1e3:.1f} ms | "
                             f"{r['discriminator'] * 1e3:.1f} ms | {_ratio(r, ours) if side != 'hf_vq' else '-'} |")
            if row["crosscheck"]:
                c = row["crosscheck"]
                lines.append(f"| | | loss cross-check (first batch, official on CPU in fp32) | generator "
                             f"{c['hf_vq']['generator']:.5f} vs {c['official']['generator']:.5f} | | | discriminator "
                             f"{c['hf_vq']['discriminator']:.5f} vs {c['official']['discriminator']:.5f} | | |")
        lines.append("")
    if "gpt" in results:
        size = results["gpt"][0]["size"]
        lines += [f"## GPT training step (hidden {size['hidden']}, {size['layers']} layers, {size['tokens']} tokens, "
                  f"batch {size['batch']}, bf16 autocast)", "",
                  "| compiled | side | step | tokens/s | utilisation | peer / hf_vq plain loop time | compile s |",
                  "|---|---|---|---|---|---|---|"]
        for row in results["gpt"]:
            ours = row["results"]["hf_vq plain loop"]
            for side, r in row["results"].items():
                lines.append(f"| {'yes' if row['compiled'] else 'no'} | {side} | {_ms(r)} | {r['tokens_per_s']:.0f} | "
                             f"{r['utilisation']:.0%} | {_ratio(r, ours)} | "
                             f"{r['compile_seconds']:.0f} |" if "compile_seconds" in r else
                             f"| {'yes' if row['compiled'] else 'no'} | {side} | {_ms(r)} | {r['tokens_per_s']:.0f} | "
                             f"{r['utilisation']:.0%} | {_ratio(r, ours)} | - |")
        lines.append("")
    if "generate" in results:
        row = results["generate"][0]
        size = row["size"]
        lines += [f"## KV-cached generation ({size['tokens']} tokens, CFG, batch {size['batch']}, GPT hidden "
                  f"{size['hidden']} x {size['layers']} layers)", "",
                  "| side | time | tokens/s | official / hf_vq time |", "|---|---|---|---|"]
        for side, r in row["results"].items():
            lines.append(f"| {side} | {_ms(r)} | {r['tokens_per_s']:.0f} | {_ratio(r, row['results']['hf_vq'])} |")
        lines.append("")
    for name, error in results.get("errors", {}).items():
        lines.append(f"- Section `{name}` failed: {error}")
    return "\n".join(lines)


def merge(paths, output_dir: Path) -> dict:
    results = {}
    for path in paths:
        part = json.loads(Path(path).read_text())
        if results and part["machine"]["gpu"] != results["machine"]["gpu"]:
            raise SystemExit(f"{path} was measured on {part['machine']['gpu']}, the others on "
                             f"{results['machine']['gpu']}: only figures of the same device are merged")
        errors = {**results.get("errors", {}), **part.get("errors", {})}
        for name in part:
            errors.pop(name, None)
        measured = dict(results.get("measured", {}))
        for name in part:
            if name not in ("machine", "quick", "errors", "measured"):
                measured[name] = part["machine"]["date"]
        machine = results.get("machine")
        results.update(part)
        if machine:  # the dates of every call
            results["machine"] = {**machine, "date": f"{machine['date']}, {part['machine']['date']}"}
        results["errors"] = {name: error for name, error in errors.items() if name not in results}
        results["measured"] = measured
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results_gpu.json").write_text(json.dumps(results, indent=1))
    (output_dir / "RESULTS_GPU.md").write_text(report(results) + "\n")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llamagen", help="LlamaGen checkout (github FoundationVision/LlamaGen)")
    parser.add_argument("--taming", help="taming-transformers checkout (github CompVis/taming-transformers)")
    parser.add_argument("--titok", help="1d-tokenizer checkout (github bytedance/1d-tokenizer)")
    parser.add_argument("--output-dir", default=str(HERE))
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tokenizers", default="llamagen,taming,titok",
                        help="the tokenizers of the tokenizers and compile sections")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script itself")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="measure nothing: write the report of these results_gpu.json files of calls on the same "
                             "kind of machine (a section of a later file replaces the same section of an earlier one)")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, Path(args.output_dir))
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device (use --device cpu with --quick for a smoke test)")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = {"quick": args.quick, "machine": {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (cpu smoke test)",
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}}

    def save():
        (output_dir / "results_gpu.json").write_text(json.dumps(results, indent=1))
        (output_dir / "RESULTS_GPU.md").write_text(report(results) + "\n")

    results["matmul"] = section_matmul(args)  # every section's utilisation needs the rates
    for name in sections:
        if name == "matmul":
            continue
        started = time.perf_counter()
        try:
            results[name] = {"search": lambda: section_search(args, results["matmul"]),
                             "tokenizers": lambda: section_tokenizers(args, results["matmul"], compiled=False),
                             "compile": lambda: section_tokenizers(args, results["matmul"], compiled=True),
                             "train_step": lambda: section_train_step(args, results["matmul"]),
                             "gpt": lambda: section_gpt(args, results["matmul"]),
                             "generate": lambda: section_generate(args)}[name]()
        except Exception as error:  # one broken section must not lose the others' figures
            import traceback

            traceback.print_exc()
            results.setdefault("errors", {})[name] = f"{type(error).__name__}: {error}"
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", flush=True)
        save()
    save()
    print(report(results))
    return results


if __name__ == "__main__":
    main()
