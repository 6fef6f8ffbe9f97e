"""The VQ-16 tokenizer training step: hf_vq's engine (``hf-vq train``) vs LlamaGen's ``vq_train.py``.

Both sides train the same LlamaGen VQ-16 (the official ``VQ_16()`` weights, converted with
``convert_llamagen_checkpoint``), with the same PatchGAN weights, the same LPIPS weights, the
same batch size and the same losses (``configs/imagenet256/vqgan-llamagen.yaml`` = the
``vq_train.py`` defaults: L2 + LPIPS + codebook/commitment + hinge GAN with weight 0.5, Adam
betas (0.9, 0.95), gradient clipping at 1), reading the same folder of JPEGs with one
single-process loader each. The GAN starts at step 0 on both sides so every timed step has a
generator and a discriminator update. The two sides take turns, one step each, in one process:
both see the same machine load.

- hf_vq: :class:`hf_vq.training.TrainingEngine` running :class:`TokenizerObjective`, as
  ``hf-vq train CONFIG`` does (its loader, Accelerate, the finite checks, the schedulers,
  logging); only the final evaluation and save are left out (not part of a step).
- official: ``vq_train.py``'s loop body, single process: ``ImageFolder`` + its
  ``random_crop_arr`` transform, ``vq_model(imgs)``, ``VQLoss(optimizer_idx=0)``, backward,
  clip, Adam; then ``VQLoss(optimizer_idx=1)`` for the discriminator. Without DDP, GradScaler
  (fp16 only) or CUDA autocast (fp32 here).

LPIPS's VGG weights cannot be downloaded here: FOR TIMING ONLY, both sides get the same
randomly initialised VGG16 trunk (seeded) and the ``lpips`` package's calibrated linear
layers, injected explicitly below: into hf_vq through ``TokenizerObjective(perceptual_loss=)``,
into LlamaGen's ``LPIPS`` by replacing its two download calls (``torchvision.models.vgg16
(pretrained=True)`` and ``load_from_pretrained``) for this process and loading the same state
dict. Nothing of this is in the library.

Faithfulness cross-check: the first step's batch of the engine is recorded, and LlamaGen's
``VQLoss`` computes its generator and discriminator losses on that batch with the same initial
weights; the report gives both values. (``vq_train.py`` calls ``vq_loss.train()``, which also
puts LPIPS's dropout layers in training mode, as the config's ``loss.perceptual_dropout: true`` does
for hf_vq. Dropout draws differ between the two codes, so the cross-check runs LPIPS without dropout
on both sides: ours with ``perceptual_dropout`` off for the whole benchmark run (dropout on five
feature maps costs nothing measurable next to the VGG), LlamaGen's in eval mode for the cross-check
only; the timed official step keeps ``vq_train.py``'s mode.)
"""

import json
import shutil
import statistics
import sys
import tempfile
import time
import types
import weakref
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "imagenet256" / "vqgan-llamagen.yaml"


def shared_lpips_state(seed: int = 0) -> dict:
    """The benchmark's LPIPS weights: a seeded random VGG16 trunk + the lpips package's linear layers."""
    import lpips
    import torch

    torch.manual_seed(seed)
    network = lpips.LPIPS(net="vgg", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    return network.state_dict()


def ours_lpips(state: dict):
    import lpips

    from hf_vq.losses import LPIPSLoss

    network = lpips.LPIPS(net="vgg", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    network.load_state_dict(state)
    return LPIPSLoss(network=network)


def official_modules(checkout: str, image_size: int, lpips_state: dict):
    """(VQ_16 model, VQLoss) of the LlamaGen checkout, with the benchmark's LPIPS weights, seeded."""
    import torch
    import torchvision

    sys.path.insert(0, str(HERE))
    from run_all import use_checkout

    use_checkout(checkout)
    import tokenizer.tokenizer_image.lpips as official_lpips
    from tokenizer.tokenizer_image.vq_loss import VQLoss
    from tokenizer.tokenizer_image.vq_model import VQ_16

    # The two download calls of LlamaGen's LPIPS, replaced for this benchmark process only.
    official_lpips.models = types.SimpleNamespace(vgg16=lambda pretrained=True: torchvision.models.vgg16(weights=None))
    official_lpips.LPIPS.load_from_pretrained = lambda self, name="vgg_lpips": None
    torch.manual_seed(0)
    model = VQ_16(codebook_size=16384, codebook_embed_dim=8, commit_loss_beta=0.25, entropy_loss_ratio=0.0,
                  dropout_p=0.0)
    loss = VQLoss(disc_start=0, disc_weight=0.5, disc_type="patchgan", disc_loss="hinge", gen_adv_loss="hinge",
                  image_size=image_size, perceptual_weight=1.0, reconstruction_weight=1.0,
                  reconstruction_loss="l2", codebook_weight=1.0)
    # LlamaGen registers its usage counter as an nn.Parameter buffer: vq_train.py's `.to(cuda)` turns it into a
    # tensor that accepts the in-place writes of the training forward; on the CPU it stays a leaf that refuses
    # them. Detached here, as the GPU move does (less the autograd history).
    model.quantize.codebook_used = model.quantize.codebook_used.detach().clone()
    missing, unexpected = loss.perceptual_loss.load_state_dict(lpips_state, strict=False)
    if missing or any(not key.startswith("lins.") for key in unexpected):  # lpips keeps a second list `lins`
        raise RuntimeError(f"LPIPS weights do not map onto LlamaGen's LPIPS: missing {missing}, extra {unexpected}")
    return model, loss


def our_config(data_dir: str, output_dir: str, image_size: int, batch_size: int, steps: int,
               mixed_precision: str = "no", workers: int = 0):
    from hf_vq.training.config import TrainConfig, read_config_file

    raw = read_config_file(CONFIG)
    raw["model"]["image_size"] = image_size
    raw["data"] = {"dataset": "imagefolder", "train_data_dir": data_dir, "eval_data_dir": data_dir,
                   "image_size": image_size, "min_crop_scale": 0.8, "train_crop": "adm_random",
                   "num_workers": workers}
    raw["training"].update({"batch_size": batch_size, "max_steps": steps, "mixed_precision": mixed_precision,
                            "checkpoint_every": 0, "resume_from": None, "log_every": 1000, "log_images_every": 0,
                            "report_to": "none"})
    raw["loss"]["disc_start"] = 0
    raw["loss"]["perceptual_dropout"] = False  # deterministic first-step losses for the cross-check (module docstring)
    raw["output_dir"] = output_dir
    return TrainConfig.from_dict(raw)


def _converted(official_model, image_size: int):
    import torch

    from hf_vq.convert import convert_llamagen_checkpoint

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "vq.pt"
        torch.save({"model": official_model.state_dict()}, path)
        return convert_llamagen_checkpoint(path, image_size=image_size)


def _our_model_and_discriminator(p, lpips_state):
    """Our model and discriminator with the official initial weights (fresh seeded ones without a checkout)."""
    import torch

    from hf_vq import LlamaGenVQConfig, LlamaGenVQModel
    from hf_vq.modules import build_discriminator

    if p.get("checkout"):
        official_model, official_loss = official_modules(p["checkout"], p["image_size"], lpips_state)
        model = _converted(official_model, p["image_size"])
        discriminator = build_discriminator("patchgan", 3, p["image_size"], 3, 64)
        discriminator.load_state_dict(official_loss.discriminator.state_dict())
        return model, discriminator, (official_model, official_loss)
    torch.manual_seed(0)
    model = LlamaGenVQModel(LlamaGenVQConfig.vq_16(image_size=p["image_size"]))
    return model, build_discriminator("patchgan", 3, p["image_size"], 3, 64), None


def case_tokenizer_train_step(p):
    """hf_vq's engine step and (with ``checkout``) LlamaGen's ``vq_train.py`` step, alternating.

    The two sides take turns, one step each, so both see the same machine load. The step
    reports our per-step seconds (``result``), the generator / discriminator parts, the
    official side's figures (``official``) and the loss cross-check.

    Optional params (``benchmarks/gpu.py``): ``device`` ("cuda": the engine's Accelerate picks the GPU by
    itself, the official side is moved there as ``vq_train.py`` does), ``mixed_precision`` ("no" / "bf16":
    Accelerate's autocast for ours, ``vq_train.py``'s ``torch.cuda.amp.autocast`` for the official side) and
    ``workers`` (loader processes, the same on both sides).
    """
    import copy

    import torch
    from tqdm.auto import tqdm

    from hf_vq.training import TokenizerObjective, TrainingEngine
    from hf_vq.utils.value_checks import queued_value_checks

    sys.path.insert(0, str(HERE))
    from bench_images import write_jpeg_folder
    from run_all import NOT_GIVEN

    lpips_state = shared_lpips_state()
    device, workers = p.get("device", "cpu"), p.get("workers", 0)
    mixed_precision = p.get("mixed_precision", "no")
    autocast_dtype = {"no": None, "bf16": torch.bfloat16}[mixed_precision]
    warmup, steps = p["warmup"], p["steps"]
    total_steps = warmup + steps + 1
    workdir = tempfile.mkdtemp(prefix="hf_vq_train_step_")
    # With loader processes, one epoch covers every step (a new epoch would restart them on both sides).
    count = p["batch"] * (total_steps + 1) if workers else max(16, 4 * p["batch"])
    data_dir = write_jpeg_folder(Path(workdir) / "images", count=count, seed=0)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def official_stepper():
        """vq_train.py's loop body as a function of the step number (None without a checkout)."""
        if not p.get("checkout"):
            return None
        from torchvision import transforms
        from torchvision.datasets import ImageFolder

        official_model, official_loss = official_modules(p["checkout"], p["image_size"], lpips_state)
        official_model, official_loss = official_model.to(device), official_loss.to(device)
        from dataset.augmentation import random_crop_arr  # LlamaGen's (official_modules put its checkout first)

        transform = transforms.Compose([
            transforms.Lambda(lambda image: random_crop_arr(image, p["image_size"])),
            transforms.RandomHorizontalFlip(), transforms.ToTensor(),
            transforms.Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], inplace=True)])
        loader = torch.utils.data.DataLoader(ImageFolder(str(data_dir), transform=transform), batch_size=p["batch"],
                                             shuffle=True, num_workers=workers, drop_last=True,
                                             pin_memory=device.startswith("cuda"))
        optimizer = torch.optim.Adam(official_model.parameters(), lr=1e-4, betas=(0.9, 0.95))
        optimizer_disc = torch.optim.Adam(official_loss.discriminator.parameters(), lr=1e-4, betas=(0.9, 0.95))
        official_model.train()
        official_loss.train()
        state = {"batches": iter(()), "generator": [], "discriminator": []}

        def official_step(train_steps):
            try:
                x, _ = next(state["batches"])
            except StopIteration:
                state["batches"] = iter(loader)
                x, _ = next(state["batches"])
            start = time.perf_counter()
            imgs = x.to(device, non_blocking=True)
            optimizer.zero_grad()
            with torch.autocast(device.split(":")[0], dtype=autocast_dtype, enabled=autocast_dtype is not None):
                recons_imgs, codebook_loss = official_model(imgs)
                loss_gen = official_loss(codebook_loss, imgs, recons_imgs, optimizer_idx=0,
                                         global_step=train_steps + 1, last_layer=official_model.decoder.last_layer,
                                         logger=None, log_every=10**9)
            loss_gen.backward()
            torch.nn.utils.clip_grad_norm_(official_model.parameters(), 1.0)
            optimizer.step()
            sync()
            middle = time.perf_counter()
            optimizer_disc.zero_grad()
            with torch.autocast(device.split(":")[0], dtype=autocast_dtype, enabled=autocast_dtype is not None):
                loss_disc = official_loss(codebook_loss, imgs, recons_imgs, optimizer_idx=1,
                                          global_step=train_steps + 1, logger=None, log_every=10**9)
            loss_disc.backward()
            torch.nn.utils.clip_grad_norm_(official_loss.discriminator.parameters(), 1.0)
            optimizer_disc.step()
            _ = loss_gen.item() + loss_disc.item()  # vq_train.py's running loss (a device sync on GPUs)
            sync()
            state["generator"].append(middle - start)
            state["discriminator"].append(time.perf_counter() - middle)

        official_step.state = state
        return official_step

    # -- ours: the engine and TokenizerObjective, the parts of a step time-stamped --------------
    model, discriminator, official = _our_model_and_discriminator(p, lpips_state)
    initial = (copy.deepcopy(model.state_dict()), copy.deepcopy(discriminator.state_dict()))
    config = our_config(str(data_dir), str(Path(workdir) / "run"), p["image_size"], p["batch"], total_steps,
                        mixed_precision, workers)
    objective = TokenizerObjective(config, model=model, perceptual_loss=ours_lpips(lpips_state))
    parts = {"generator": [], "discriminator": [], "first_batch": None, "first_terms": {}}
    original_build, original_step_losses = objective.build, objective.step_losses

    def build_with_discriminator(engine):
        original_build(engine)
        objective.raw_discriminator.load_state_dict(initial[1])  # the official (or seeded) PatchGAN

    def timed_step_losses(batch, step):
        if parts["first_batch"] is None:
            parts["first_batch"] = batch["pixel_values"].detach().clone()
        start = time.perf_counter()
        losses = original_step_losses(batch, step)
        item = next(losses)
        if step == 0:
            parts["first_terms"]["generator"] = float(item.loss.detach())
        yield item
        sync()
        middle = time.perf_counter()
        for item in losses:
            if step == 0:
                parts["first_terms"]["discriminator"] = float(item.loss.detach())
            yield item
        sync()
        parts["generator"].append(middle - start)
        parts["discriminator"].append(time.perf_counter() - middle)

    objective.build, objective.step_losses = build_with_discriminator, timed_step_losses
    engine = TrainingEngine(objective, config.training, output_dir=config.output_dir, seed=config.seed,
                            config=config.to_dict())

    def step():
        # TrainingEngine.run's loop (build, resume, then per step: step, log, checkpoint), without the final
        # evaluation and save, taking turns with the official step
        official_step = official_stepper()
        engine.build()
        engine.resume()
        progress = tqdm(range(total_steps), disable=True)
        ours_times, official_times = [], []
        # as run(): the models' value checks are queued and read with the losses at logging steps
        with queued_value_checks():
            for number in progress:
                start = time.perf_counter()
                engine.train_step(number, progress)
                sync()
                ours_times.append(time.perf_counter() - start)
                if official_step is not None:
                    start = time.perf_counter()
                    official_step(number)
                    official_times.append(time.perf_counter() - start)
        timed = slice(warmup + 1, None)
        step.result = ours_times[timed]
        step.parts = {"generator": statistics.median(parts["generator"][timed]),
                      "discriminator": statistics.median(parts["discriminator"][timed]),
                      "official": {"error": NOT_GIVEN}, "crosscheck": None}
        if official_step is not None:
            state = official_step.state
            step.parts["official"] = {"times": official_times[timed],
                                      "generator": statistics.median(state["generator"][timed]),
                                      "discriminator": statistics.median(state["discriminator"][timed])}
            step.parts["crosscheck"] = {"hf_vq": parts["first_terms"],
                                        "official": _official_losses(official, initial, parts["first_batch"].cpu())}

    weakref.finalize(step, shutil.rmtree, workdir, True)  # the images and the run folder go with the step
    return step, {"warmup": 0, "flops": _step_flops(p, lpips_state) * p["batch"]}


def _official_losses(official, initial, batch):
    """LlamaGen's VQLoss generator and discriminator losses on ``batch`` from the initial weights."""
    import torch

    official_model, official_loss = official
    official_model.train()
    official_loss.train()
    official_loss.perceptual_loss.eval()  # no dropout, as our side in this benchmark: compare like with like
    with torch.no_grad():
        recons, codebook_loss = official_model(batch)
        # The hinge GAN term at weight 0.5 goes through the discriminator in train mode (BatchNorm batch statistics).
        loss_gen = official_loss(codebook_loss, batch, recons, optimizer_idx=0, global_step=1,
                                 last_layer=official_model.decoder.last_layer, logger=None, log_every=10**9)
        loss_disc = official_loss(codebook_loss, batch, recons, optimizer_idx=1, global_step=1, logger=None,
                                  log_every=10**9)
    del initial
    return {"generator": float(loss_gen), "discriminator": float(loss_disc)}


def _step_flops(p, lpips_state) -> float:
    """FLOPs per image of one generator + discriminator step (forward and backward), counted by torch on our
    modules at batch 1."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hf_vq import LlamaGenVQConfig, LlamaGenVQModel
    from hf_vq.modules import build_discriminator

    model = LlamaGenVQModel(LlamaGenVQConfig.vq_16(image_size=p["image_size"])).train()
    discriminator = build_discriminator("patchgan", 3, p["image_size"], 3, 64)
    perceptual = ours_lpips(lpips_state)
    x = torch.rand(1, 3, p["image_size"], p["image_size"]) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        loss = out.reconstruction_loss + perceptual(out.reconstruction, x) + out.quantizer_loss
        loss = loss - 0.5 * discriminator(out.reconstruction).mean()
        loss.backward()
        d_loss = discriminator(x).mean() - discriminator(out.reconstruction.detach()).mean()
        d_loss.backward()
    return float(counter.get_total_flops())


if __name__ == "__main__":  # python tokenizer_training_step.py '{"image_size": 32, "batch": 1, ...}'
    params = json.loads(sys.argv[1])
    run, extra = case_tokenizer_train_step(params)
    run()
    print(json.dumps({"seconds": run.result, **run.parts, "flops": extra["flops"]}))
