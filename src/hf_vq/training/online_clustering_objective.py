"""Online clustering of frozen teacher features (Cluster, stage 1 of the IU-tokenizer recipe).

Per micro-batch: ``model(pixels)`` runs the frozen teacher and the quantizer in training mode,
which moves rarely used codes towards their nearest feature (CVQ anchors) and returns the
codebook loss ``mse(code, sg(feature))``; that loss is the whole objective and the codebook
is the only trained parameter (the official ``configs/cluster/runner.py``: Adam over
``_quantizer`` only). There is no reconstruction, so no LPIPS and no GAN.

At the end: codebook usage and perplexity of the held-out images' codes (``metrics.json``),
then the model and its ``VQImageProcessor``. Pixels come in stage 2
(:mod:`hf_vq.training.pixel_decoder_objective`).
"""

import torch

from ..processing import VQImageProcessor
from ..quantizers import CodebookUsage
from .engine import StepLoss
from .tokenizer_objective import TokenizerObjective, build_model


class OnlineClusteringObjective(TokenizerObjective):
    """Train a semantic tokenizer's codebook on its frozen features (the model's ``stage1_forward`` loss)."""

    loss_name = "total"
    progress_terms = ("total", "quantizer_codebook")
    final_outputs = (("model", "model.safetensors"),)

    def build(self, engine) -> None:
        config, cfg = self.config, self.cfg
        ignored = {name: getattr(cfg, name) for name in ("lpips_weight", "disc_weight") if getattr(cfg, name)}
        if ignored:
            raise ValueError(
                f"Online clustering has no reconstruction, so nothing for {sorted(ignored)} to weigh: remove them from "
                "`loss:` (the GAN recipe belongs to the pixel decoder, stage 2: model.stage1_from)."
            )
        model = self.raw_model if self.raw_model is not None else build_model(config.model)
        if getattr(model, "pixel_decoder", None) is not None:
            raise ValueError("This model already has a pixel decoder: its codebook is frozen. Train the decoder with the "
                             "tokenizer objective (model.pretrained) instead.")
        if config.data.image_size != model.config.image_size:
            raise ValueError(f"data.image_size {config.data.image_size} must be the model's image_size "
                             f"{model.config.image_size} (the resolution its teacher sees).")
        trained = [p for p in model.parameters() if p.requires_grad]
        self.model_module = engine.add_optimizer("model", model, trained, engine.args.learning_rate)
        self.unwrapped = engine.accelerator.unwrap_model(self.model_module)
        self.discriminator = self.raw_discriminator = self.lecam = self.perceptual = None
        self.usage = CodebookUsage(self.unwrapped.config.codebook_size)

    def step_losses(self, batch, step: int):
        self.num_unreadable = self.num_unreadable + batch["num_unreadable"]  # on the device: no sync per step
        output = self.model_module(batch["pixel_values"])
        terms = {f"quantizer_{name}": value for name, value in (output.loss_terms or {}).items()}
        terms["total"] = output.loss
        self.usage.update(output.indices, check_range=False)  # the model's own quantizer made them
        yield StepLoss("model", output.loss, terms)

    def log_values(self, engine, step: int) -> dict:
        codebook = self.usage.compute(all_reduce=True)
        self.usage = CodebookUsage(self.unwrapped.config.codebook_size)
        return {"train/codebook_usage": codebook["codebook_usage"], "train/perplexity": codebook["perplexity"],
                "data/unreadable_images": self._unreadable_total(engine)}

    @torch.no_grad()
    def evaluate_codes(self, engine) -> dict:
        """Codebook usage and perplexity of the held-out images' codes (counts summed over processes)."""
        model = self.unwrapped
        was_training = model.training
        model.eval()
        usage = CodebookUsage(model.config.codebook_size, device=engine.device)
        num_images = 0
        for pixel_values in self.eval_batches:
            if pixel_values.shape[0]:
                usage.update(model.encode(pixel_values.to(engine.device, model.dtype)).indices)
                num_images += pixel_values.shape[0]
        model.train(was_training)
        total = int(engine.accelerator.reduce(torch.tensor(num_images, device=engine.device), reduction="sum"))
        if total == 0:
            raise ValueError("No held-out images were evaluated: the evaluation set is empty or unreadable.")
        data = self.config.data
        source = data.eval_data_dir or data.train_data_dir or data.dataset
        return {**usage.compute(all_reduce=True), "num_images": total,
                "eval_data": f"{source} evaluation images, ADM center crop {data.image_size}px"}

    def finish(self, engine, save_dir) -> dict:
        metrics = self.evaluate_codes(engine)
        metrics["unreadable_images_skipped"] = self._unreadable_total(engine)
        if engine.is_main_process:
            self.unwrapped.save_pretrained(save_dir)
            VQImageProcessor(size=self.config.data.image_size,
                             num_channels=self.unwrapped.config.num_channels).save_pretrained(save_dir)
        return metrics


__all__ = ["OnlineClusteringObjective"]
