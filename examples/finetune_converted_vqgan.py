"""Fine-tune a converted VQGAN / LlamaGen VQ tokenizer on a folder of images.

1. Convert the official checkpoint once (or pass it with ``--checkpoint`` and this script does):

       hf-vq convert taming vqgan_imagenet_f16_1024/ckpts/last.ckpt converted/vqgan-f16-1024
       hf-vq convert llamagen vq_ds16_c2i.pt converted/llamagen-vq16

2. Fine-tune on your images (any folder of .jpg / .png), here only the decoder, keeping the
   codes of the pretrained tokenizer (so a GPT trained on them stays valid):

       python examples/finetune_converted_vqgan.py --model converted/llamagen-vq16 \
           --images my_images/ --output-dir finetuned/llamagen-vq16 --decoder-only --steps 1000

The objective is the model's own ``model(x).loss`` (the recipe's reconstruction loss plus the
quantizer terms), optimised with the recipe's Adam betas and gradient clipping. The LPIPS
and GAN terms of configs/imagenet256/vqgan-*.yaml come with the project's trainer
(``hf-vq train``); use it for full recipes. Other tokenizers (vqvae, fsq_vae, ...) are
refused: fine-tune them with ``hf-vq train CONFIG --model.pretrained DIR``.

The output folder gets the tokenizer, its image processor and ``finetune_metrics.json``:
the reconstruction loss on a fixed batch of your images before and after fine-tuning.
"""

import argparse
import json
import os
import random

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel

import hf_vq  # noqa: F401  (registers the hf_vq models with the Auto classes)
from hf_vq.convert import convert_llamagen_checkpoint, convert_taming_checkpoint

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Adam betas and gradient clipping of the two recipes (REFERENCES: ImageNet-256 table).
RECIPES = {"vqgan": ((0.5, 0.9), None), "llamagen_vq": ((0.9, 0.95), 1.0)}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a converted (save_pretrained) folder")
    source.add_argument("--checkpoint", help="an official checkpoint, converted on the fly (see --source)")
    parser.add_argument("--source", choices=["taming", "llamagen"], help="kind of --checkpoint")
    parser.add_argument("--images", required=True, help="folder of training images")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--decoder-only", action="store_true", help="train post_quant_conv + decoder; keep the codes fixed")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def check_model_folder(parser, folder):
    """The folder must hold a converted VQGAN / LlamaGen VQ: say what it holds otherwise."""
    config_file = os.path.join(folder, "config.json")
    if not os.path.isfile(config_file):
        parser.error(f"--model {folder}: no config.json there. Pass a folder written by `hf-vq convert taming|llamagen`.")
    with open(config_file) as handle:
        model_type = json.load(handle).get("model_type")
    if model_type not in RECIPES:
        parser.error(
            f"--model {folder} holds a {model_type!r} model; this example fine-tunes converted VQGAN / LlamaGen VQ "
            f"tokenizers ({', '.join(RECIPES)}). Fine-tune other tokenizers with "
            f"`hf-vq train CONFIG --model.pretrained {folder}`."
        )


def load_model(args, parser):
    if args.model:
        check_model_folder(parser, args.model)
        return AutoModel.from_pretrained(args.model), AutoImageProcessor.from_pretrained(args.model)
    if args.source is None:
        parser.error("--checkpoint needs --source taming or --source llamagen.")
    convert = convert_taming_checkpoint if args.source == "taming" else convert_llamagen_checkpoint
    converted_dir = os.path.join(args.output_dir, "converted")
    model = convert(args.checkpoint, converted_dir)
    return model, AutoImageProcessor.from_pretrained(converted_dir)


def image_paths(folder):
    paths = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not paths:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder!r}.")
    return paths


def reconstruction_loss(model, pixel_values) -> float:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        loss = model(pixel_values).reconstruction_loss.item()
    model.train(was_training)
    return loss


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if not os.path.isdir(args.images):
        parser.error(f"--images {args.images}: no such folder.")

    model, processor = load_model(args, parser)
    model.to(device).train()
    if args.decoder_only:
        for module in (model.encoder, model.quant_conv, model.quantizer):
            module.requires_grad_(False)
            module.eval()  # no codebook behaviour updates either
    betas, max_grad_norm = RECIPES[model.config.model_type]
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=args.learning_rate, betas=betas)

    paths = image_paths(args.images)
    fixed_batch = processor([Image.open(path) for path in paths[: args.batch_size]], return_tensors="pt")
    fixed_batch = fixed_batch["pixel_values"].to(device)
    loss_before = reconstruction_loss(model, fixed_batch)
    for step in range(1, args.steps + 1):
        batch = [Image.open(path) for path in random.choices(paths, k=args.batch_size)]
        pixel_values = processor(batch, return_tensors="pt")["pixel_values"].to(device)
        if random.random() < 0.5:
            pixel_values = pixel_values.flip(-1)
        output = model(pixel_values)
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        if step % 50 == 0 or step == 1:
            print(f"step {step}: loss {output.loss.item():.4f} (reconstruction {output.reconstruction_loss.item():.4f})")

    metrics = {"reconstruction_loss_before": loss_before, "reconstruction_loss_after": reconstruction_loss(model, fixed_batch),
               "images": len(paths), "steps": args.steps}
    model.eval().save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    with open(os.path.join(args.output_dir, "finetune_metrics.json"), "w") as handle:
        json.dump(metrics, handle, indent=2)
    print(f"Reconstruction loss on {min(len(paths), args.batch_size)} of your images: "
          f"{metrics['reconstruction_loss_before']:.4f} before, {metrics['reconstruction_loss_after']:.4f} after")
    print(f"Saved the fine-tuned tokenizer and finetune_metrics.json to {args.output_dir}")


if __name__ == "__main__":
    main()
