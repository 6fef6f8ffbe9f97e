"""TiTok's two-stage recipe (bytedance/1d-tokenizer, ``scripts/train_titok.py``) as two objectives.

Stage 1, :class:`ProxyCodeObjective` (``loss.objective: proxy_codes``): a frozen grid tokenizer
(the official recipe: MaskGIT-VQGAN, 1024 codes on a 16 x 16 grid at 256 px) encodes each image;
the TiTok decoder predicts, for every cell of its grid, logits over that tokenizer's codes, and
the loss is the cross-entropy against its codes ("proxy codes") plus the quantizer's terms
(official ``ReconstructionLoss_Stage1``). No pixel loss, no discriminator. The encoder, the
quantizer and the ViT decoder train; the pixel codebook and pixel decoder do not (official stage 1
has none: they are loaded from MaskGIT-VQGAN in stage 2). When the proxy tokenizer has a MaskGIT
decoder and codebook of the TiTok's sizes, they are copied into the TiTok's ``pixel_codebook`` and
``pixel_decoder``, so the stage-1 model already decodes images the way the released models do.

Stage 2, :class:`DecoderFinetuneObjective` (``loss.objective: decoder_finetune``): a trained
tokenizer (``model.pretrained``) keeps its encoder and quantizer frozen (same tokens: the AR
model trained on them stays valid) while its decoder is fine-tuned with the reconstruction
objective: L2 + perceptual + GAN (official ``ReconstructionLoss_Stage2``: quantizer weight 0).
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel

from ..modules.maskgit_vqgan import MaskGITDecoder
from ..quantizers import CodebookUsage
from .engine import StepLoss
from .tokenizer_objective import TokenizerObjective, build_model, titok_parameter_groups

FROZEN_IN_DECODER_FINETUNE = ("encoder", "quant_conv", "quantizer")


class ProxyCodeNetwork(nn.Module):
    """What stage 1 differentiates: pixels -> (decoder logits over the proxy codes, encode output).

    A module of its own so that Accelerate wraps (and, on several GPUs, all-reduces) exactly
    the path the loss uses, not the tokenizer's pixel forward."""

    def __init__(self, tokenizer: nn.Module):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, pixel_values: torch.Tensor):
        encoded = self.tokenizer.encode(pixel_values)
        return self.tokenizer.decode_logits(encoded.quantized), encoded


def load_proxy_tokenizer(path: str, model: nn.Module) -> nn.Module:
    """The frozen tokenizer whose codes stage 1 predicts, checked against the TiTok's decoder grid."""
    if getattr(model.config, "decoder_type", None) != "maskgit":
        raise ValueError(
            'loss.objective proxy_codes trains a decoder that predicts code logits: it needs a TiTok with '
            f'decoder_type "maskgit" (model.decoder_type); got {type(model).__name__} with '
            f'decoder_type {getattr(model.config, "decoder_type", None)!r}.'
        )
    proxy = AutoModel.from_pretrained(path).eval().requires_grad_(False)
    if getattr(proxy, "indices_ndim", 3) != 3:
        raise ValueError(f"The proxy tokenizer {path} gives 1D indices; stage 1 needs a grid tokenizer (MaskGIT-VQGAN).")
    config = model.config
    if proxy.config.codebook_size != config.maskgit_codebook_size:
        raise ValueError(
            f"The proxy tokenizer {path} has {proxy.config.codebook_size} codes but the TiTok decoder predicts "
            f"model.maskgit_codebook_size = {config.maskgit_codebook_size}: make them equal."
        )
    if proxy.downsample_factor != config.decoder_patch_size:
        raise ValueError(
            f"The proxy tokenizer {path} gives one code per {proxy.downsample_factor}x{proxy.downsample_factor} pixels "
            f"but each TiTok decoder grid token covers model.decoder_patch_size = {config.decoder_patch_size}: make them equal."
        )
    return proxy


def copy_pixel_decoder(proxy: nn.Module, model: nn.Module) -> bool:
    """Copy a MaskGIT proxy tokenizer's codebook and decoder into the TiTok's pixel path (official stage 2's
    initialisation); returns whether they fitted."""
    decoder = getattr(proxy, "decoder", None)
    codebook = getattr(getattr(proxy, "quantizer", None), "codebook", None)
    if not isinstance(decoder, MaskGITDecoder) or codebook is None or codebook.shape != model.pixel_codebook.shape:
        return False
    try:
        model.pixel_decoder.load_state_dict(decoder.state_dict())
    except RuntimeError:
        return False
    with torch.no_grad():
        model.pixel_codebook.copy_(codebook)
    return True


class ProxyCodeObjective(TokenizerObjective):
    """TiTok stage 1: cross-entropy of the decoder's per-cell logits against a frozen tokenizer's codes."""

    loss_name = "total"
    progress_terms = ("total", "proxy_cross_entropy", "proxy_accuracy")

    def build(self, engine) -> None:
        config, cfg, args = self.config, self.cfg, engine.args
        if cfg.disc_weight > 0 or cfg.lpips_weight > 0 or cfg.convnext_weight > 0:
            raise ValueError("loss.objective proxy_codes (TiTok stage 1) has no pixel loss: set loss.disc_weight, "
                             "loss.lpips_weight and loss.convnext_weight to 0 (stage 2, decoder_finetune, adds them).")
        model = self.raw_model if self.raw_model is not None else build_model(config.model)
        if config.data.image_size != model.config.image_size:
            raise ValueError(f"data.image_size {config.data.image_size} differs from the TiTok's image_size "
                             f"{model.config.image_size}: make them equal.")
        self.proxy = load_proxy_tokenizer(cfg.proxy_tokenizer, model).to(engine.device)
        self.copied_pixel_decoder = copy_pixel_decoder(self.proxy, model)
        # Stage 1 never decodes pixels: the pixel path stays out of the optimizer.
        model.pixel_codebook.requires_grad_(False)
        model.pixel_decoder.requires_grad_(False)
        self.network = engine.add_optimizer("model", ProxyCodeNetwork(model),
                                            titok_parameter_groups(model, args.weight_decay), args.learning_rate)
        self.unwrapped = model
        self.discriminator = self.raw_discriminator = self.lecam = self.perceptual = self.convnext = None
        self.usage = CodebookUsage(model.config.codebook_size)

    def step_losses(self, batch, step: int):
        pixel_values = batch["pixel_values"]
        self.num_unreadable = self.num_unreadable + batch["num_unreadable"]  # on the device: no sync per step
        with torch.no_grad():
            targets = self.proxy.encode(pixel_values.to(self.proxy.dtype)).indices
        logits, encoded = self.network(pixel_values)
        cross_entropy = F.cross_entropy(logits.float(), targets)
        terms = {"proxy_cross_entropy": cross_entropy,
                 "proxy_accuracy": (logits.argmax(dim=1) == targets).float().mean().detach()}
        for name, value in (encoded.loss_terms or {}).items():
            terms[f"quantizer_{name}"] = value
        total = cross_entropy
        if encoded.quantizer_loss is not None and self.cfg.quantizer_weight:
            total = total + self.cfg.quantizer_weight * encoded.quantizer_loss.float()
        terms["total"] = total
        self.usage.update(encoded.indices, check_range=False)  # the model's own quantizer made them
        yield StepLoss("model", total, terms)


class DecoderFinetuneObjective(TokenizerObjective):
    """TiTok stage 2 (and any decoder-only fine-tuning): encoder and quantizer frozen, decoder trained
    with the reconstruction objective of the ``loss:`` section."""

    def prepare_model(self, model: nn.Module) -> None:
        if self.raw_model is None and not self.config.model.get("pretrained"):
            raise ValueError("loss.objective decoder_finetune fine-tunes the decoder of a trained tokenizer: set "
                             "model.pretrained to its folder (e.g. the output of the proxy_codes stage).")
        self.frozen = [getattr(model, name) for name in FROZEN_IN_DECODER_FINETUNE
                       if isinstance(getattr(model, name, None), nn.Module)]
        if not self.frozen:
            raise ValueError(f"{type(model).__name__} has no encoder/quantizer modules to freeze.")
        # TiTok's learned latent tokens belong to its encoder and are frozen with it.
        for module in self.frozen:
            module.requires_grad_(False)
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"{type(model).__name__} has nothing left to train once its encoder and quantizer are frozen.")

    def step_losses(self, batch, step: int):
        # The engine puts the model in train mode; the frozen part stays in eval mode so that no
        # quantizer behaviour (EMA, dead-code restarts) changes the codebook.
        for module in self.frozen:
            module.eval()
        yield from super().step_losses(batch, step)


__all__ = ["DecoderFinetuneObjective", "ProxyCodeNetwork", "ProxyCodeObjective", "copy_pixel_decoder",
           "load_proxy_tokenizer"]
