"""The training loop: one Accelerate loop for any hf_vq tokenizer.

The model's ``forward`` gives the loss (reconstruction + quantizer terms); this loop adds
the optimiser, progress bar, final evaluation on held-out data, a reconstruction grid,
and saving (model + image processor + metrics JSON).
"""

import json
import math
from itertools import islice
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel

from ..data import EvalTransform, TrainTransform, load_embedded_dataset
from ..evaluation import evaluate_reconstruction, save_reconstruction_grid
from ..processing import VQImageProcessor
from .config import TrainConfig, load_config


def build_model(model_section: dict):
    """A fresh tokenizer from the ``model:`` section (model_type + its config fields)."""
    kwargs = dict(model_section)
    model_type = kwargs.pop("model_type")
    config = AutoConfig.for_model(model_type, **kwargs)
    return AutoModel.from_config(config)


def _datasets(config: TrainConfig):
    if config.data.dataset != "embedded":
        raise ValueError(
            f"Unknown dataset {config.data.dataset!r}; this build supports `dataset: embedded`."
        )
    return load_embedded_dataset("train"), load_embedded_dataset("validation")


class _Transformed(torch.utils.data.Dataset):
    def __init__(self, dataset, transform):
        self.dataset = dataset
        self.transform = transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.transform(self.dataset[index]["image"])


def _infinite(loader):
    while True:
        yield from loader


def train(config: TrainConfig) -> Path:
    """Train, evaluate on the validation split, save. Returns the output directory."""
    accelerator = Accelerator(mixed_precision=config.training.mixed_precision)
    set_seed(config.seed)
    output_dir = Path(config.output_dir)
    args = config.training

    model = build_model(config.model)
    image_size = config.data.image_size
    if image_size % model.downsample_factor:
        raise ValueError(
            f"data.image_size {image_size} is not divisible by the model's downsampling factor {model.downsample_factor}."
        )
    train_set, eval_set = _datasets(config)
    train_loader = DataLoader(
        _Transformed(train_set, TrainTransform(image_size, min_scale=config.data.min_crop_scale)),
        batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=config.data.num_workers,
    )
    eval_loader = DataLoader(_Transformed(eval_set, EvalTransform(image_size)), batch_size=config.eval.batch_size)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), weight_decay=args.weight_decay,
    )
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)

    model.train()
    batches = _infinite(train_loader)
    progress = tqdm(range(args.max_steps), desc="train", disable=not accelerator.is_local_main_process)
    history = []
    for step in progress:
        pixel_values = next(batches)
        output = model(pixel_values)
        loss = output.loss
        if not math.isfinite(loss.item()):
            bad = [name for name, value in output.loss_terms.items() if not math.isfinite(value.item())]
            raise FloatingPointError(f"Non-finite loss at step {step}: terms {bad} are NaN/inf. Lower the learning rate.")
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if args.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        if step % args.log_every == 0 or step == args.max_steps - 1:
            terms = {name: round(value.item(), 5) for name, value in output.loss_terms.items()}
            history.append({"step": step, "loss": loss.item(), **terms})
            progress.set_postfix(loss=f"{loss.item():.4f}", perplexity=f"{output.perplexity.item():.1f}")

    unwrapped = accelerator.unwrap_model(model)
    metrics = evaluate_reconstruction(unwrapped, eval_loader, progress=accelerator.is_local_main_process)
    metrics["train_steps"] = args.max_steps
    metrics["eval_data"] = f"{config.data.dataset} validation split, ADM center crop {image_size}px"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        unwrapped.save_pretrained(output_dir)
        VQImageProcessor(size=image_size, num_channels=unwrapped.config.num_channels).save_pretrained(output_dir)
        originals = torch.cat(list(islice((b for b in eval_loader), 1)))[: config.eval.num_grid_images]
        with torch.no_grad():
            unwrapped.eval()
            reconstructions = unwrapped(originals).reconstruction
        save_reconstruction_grid(originals, reconstructions, output_dir / "reconstructions.png")
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (output_dir / "train_history.json").write_text(json.dumps(history, indent=2))
        (output_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
        print(json.dumps(metrics, indent=2))
    accelerator.wait_for_everyone()
    return output_dir


def train_from_config(path=None, overrides=()) -> Path:
    return train(load_config(path, overrides))
