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
(``hf-vq train``); use it for full recipes.
"""

import argparse
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


def parse_args():
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
    return parser.parse_args()


def load_model(args):
    if args.model:
        return AutoModel.from_pretrained(args.model), AutoImageProcessor.from_pretrained(args.model)
    if args.source is None:
        raise ValueError("--checkpoint needs --source taming or --source llamagen.")
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


def main():
    args = parse_args()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    model, processor = load_model(args)
    model.to(device).train()
    if args.decoder_only:
        for module in (model.encoder, model.quant_conv, model.quantizer):
            module.requires_grad_(False)
            module.eval()  # no codebook behaviour updates either
    betas, max_grad_norm = RECIPES[model.config.model_type]
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=args.learning_rate, betas=betas)

    paths = image_paths(args.images)
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

    model.eval().save_pretrained(args.output_dir)
    processor.save_pretrained(args.output_dir)
    print(f"Saved the fine-tuned tokenizer to {args.output_dir}")


if __name__ == "__main__":
    main()
