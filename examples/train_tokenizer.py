"""Train a tokenizer with hf_vq's trainer: a short script to copy and adapt.

    python examples/train_tokenizer.py                          # tiny VQ-GAN on the embedded photos
    python examples/train_tokenizer.py --images path/to/folder  # on your own images
    accelerate launch --multi_gpu --num_processes 4 examples/train_tokenizer.py --images ...

Everything the YAML configs set can be set here as a dict; ``hf-vq train CONFIG`` runs
the same ``train`` function.
"""

import argparse

from hf_vq.training import TrainConfig, run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", help="a folder of images (default: the embedded scikit-image photos)")
    parser.add_argument("--output-dir", default="outputs/example-vqgan")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lpips", action="store_true",
                        help="add the LPIPS loss (needs torchvision's vgg16 weights in the torch hub cache)")
    args = parser.parse_args()

    image_size = 32
    config = TrainConfig.from_dict({
        "output_dir": args.output_dir,
        "seed": 0,
        # Any registered tokenizer: model_type + its config fields.
        "model": {"model_type": "vqvae", "image_size": image_size, "hidden_dim": 64, "codebook_size": 512,
                  "codebook_dim": 16, "l2_norm": True},
        "data": {"image_size": image_size, **({"train_data_dir": args.images} if args.images else {"dataset": "embedded"})},
        # A VQGAN-style loss: L1 + LPIPS + PatchGAN hinge loss with taming's adaptive weight.
        "loss": {"reconstruction": "l1", "lpips_weight": 1.0 if args.lpips else 0.0, "disc_weight": 0.5,
                 "disc_start": args.steps // 2, "disc_layers": 2, "discriminator": "patchgan", "disc_loss": "hinge"},
        "training": {"batch_size": 32, "max_steps": args.steps, "learning_rate": 2e-4, "adam_beta1": 0.5,
                     "adam_beta2": 0.9, "lr_scheduler": "cosine", "warmup_steps": 100, "max_grad_norm": 1.0,
                     "ema_decay": 0.999, "checkpoint_every": 500, "resume_from": "latest", "log_every": 50,
                     "log_images_every": 500},
    })
    result = run_training(config)
    print(f"Saved to {result.output_dir}: load it with AutoModel.from_pretrained({str(result.output_dir)!r}).")
    print(f"PSNR {result.metrics['psnr']:.2f} dB, codebook usage {result.metrics['codebook_usage']:.1%}")


if __name__ == "__main__":
    main()
