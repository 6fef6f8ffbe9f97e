"""TiTok: ViT encoder with learned latent tokens -> VectorQuantizer -> ViT decoder -> pixels.

Reads top to bottom: encoder, decoder, then the model that joins them through the quantizer.
Indices are 1D, shaped (B, num_latent_tokens); ``encode(x).quantized`` is (B, codebook_dim, N),
channel-first like the 2D tokenizers' (B, D, h, w). ``hf_vq.convert.titok`` maps the official
weights (``tokenizer_titok_*.bin``) onto these module names.
"""

import torch
import torch.nn as nn
from transformers import initialization as init

from ...modules.maskgit_vqgan import MaskGITDecoder
from ...modules.vit_blocks import ViTAttention, ViTStack
from ...quantizers import DeadCodeReinit, VectorQuantizer
from ..base import VQEncoderOutput, VQTokenizerPreTrainedModel, check_pixel_values
from .configuration_titok import MASKGIT_DECODER_TYPES, TiTokConfig


class TiTokEncoder(nn.Module):
    """Pixels (B, C, H, W) -> latents (B, codebook_dim, N).

    Sequence: [class token, H/p * W/p patch tokens] + positions, then the N learned latent
    tokens + their own positions; only the latent tokens leave the ViT.
    """

    def __init__(self, config: TiTokConfig):
        super().__init__()
        width = config.encoder_hidden_size
        self.num_latent_tokens = config.num_latent_tokens
        self.legacy_latent_layout = config.legacy_latent_layout
        self.patch_embed = nn.Conv2d(config.num_channels, width, config.patch_size, stride=config.patch_size)
        self.class_token = nn.Parameter(torch.empty(1, width))
        self.position_embedding = nn.Parameter(torch.empty(config.grid_size**2 + 1, width))
        self.latent_tokens = nn.Parameter(torch.empty(config.num_latent_tokens, width))
        self.latent_position_embedding = nn.Parameter(torch.empty(config.num_latent_tokens, width))
        self.transformer = ViTStack(width, config.encoder_num_layers, config.encoder_num_heads, config.mlp_ratio)
        self.proj_out = nn.Linear(width, config.codebook_dim)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        batch = pixel_values.shape[0]
        patches = self.patch_embed(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(batch, -1, -1), patches], dim=1) + self.position_embedding
        latents = (self.latent_tokens + self.latent_position_embedding).expand(batch, -1, -1)
        x = self.transformer.run_blocks(torch.cat([x, latents], dim=1))
        latents = self.transformer.norm_post(x[:, -self.num_latent_tokens :])
        if self.legacy_latent_layout:
            # The released weights reshape (B, N, width) to (B, width, N) without a transpose
            # before their 1x1 conv: the projection sees a scrambled layout they were trained on.
            latents = latents.reshape(batch, -1, self.num_latent_tokens).transpose(1, 2)
        return self.proj_out(latents).transpose(1, 2)


class TiTokDecoder(nn.Module):
    """Quantized latents (B, codebook_dim, N) -> per grid cell outputs.

    Sequence: [class token, G*G mask tokens] + positions, then the N embedded codes + their
    positions; the grid tokens leave the ViT. ``decoder_type="pixel"``: each predicts its
    patch's pixels, then a 3x3 conv; ``"maskgit"``: each predicts logits over the MaskGIT-VQGAN
    codes (Linear -> tanh -> Linear, the official 1x1 convs); ``"conv"``: each is projected to the
    MaskGIT decoder's ``maskgit_z_channels`` latents (one Linear).
    """

    def __init__(self, config: TiTokConfig):
        super().__init__()
        width = config.decoder_hidden_size
        self.grid_size = config.decoder_grid_size
        self.patch_size = config.decoder_patch_size
        self.num_channels = config.num_channels
        self.decoder_type = config.decoder_type
        self.embed = nn.Linear(config.codebook_dim, width)
        self.class_token = nn.Parameter(torch.empty(1, width))
        self.position_embedding = nn.Parameter(torch.empty(self.grid_size**2 + 1, width))
        self.mask_token = nn.Parameter(torch.empty(1, 1, width))
        self.latent_position_embedding = nn.Parameter(torch.empty(config.num_latent_tokens, width))
        self.transformer = ViTStack(width, config.decoder_num_layers, config.decoder_num_heads, config.mlp_ratio)
        if self.decoder_type == "maskgit":
            self.head = nn.Sequential(
                nn.Linear(width, 2 * width), nn.Tanh(), nn.Linear(2 * width, config.maskgit_codebook_size)
            )
            self.conv_out = None
        elif self.decoder_type == "conv":
            self.head = nn.Linear(width, config.maskgit_z_channels)
            self.conv_out = None
        else:
            self.head = nn.Linear(width, self.patch_size**2 * config.num_channels)
            self.conv_out = nn.Conv2d(config.num_channels, config.num_channels, 3, padding=1)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        """(B, D, N) -> pixels (B, C, H, W) for "pixel", logits (B, K, G, G) for "maskgit", latents
        (B, maskgit_z_channels, G, G) for "conv"."""
        batch = quantized.shape[0]
        codes = self.embed(quantized.transpose(1, 2)) + self.latent_position_embedding
        grid = torch.cat(
            [self.class_token.expand(batch, -1, -1), self.mask_token.expand(batch, self.grid_size**2, -1)], dim=1
        ) + self.position_embedding
        x = self.transformer.run_blocks(torch.cat([grid, codes], dim=1))
        x = self.transformer.norm_post(x[:, 1 : 1 + self.grid_size**2])
        out = self.head(x).view(batch, self.grid_size, self.grid_size, -1)
        if self.decoder_type in MASKGIT_DECODER_TYPES:
            return out.permute(0, 3, 1, 2)
        # (B, G, G, p*p*C), channels ordered (p1, p2, c) -> (B, C, G*p, G*p)
        p, g = self.patch_size, self.grid_size
        pixels = out.view(batch, g, g, p, p, self.num_channels).permute(0, 5, 1, 3, 2, 4)
        return self.conv_out(pixels.reshape(batch, self.num_channels, g * p, g * p))


class TiTokModel(VQTokenizerPreTrainedModel):
    config: TiTokConfig
    config_class = TiTokConfig
    indices_ndim = 2
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = (
        "l2_norm", "legacy_latent_layout", "zero_one_pixels", "encoder_num_heads", "decoder_num_heads",
    )

    def __init__(self, config: TiTokConfig):
        super().__init__(config)
        self.encoder = TiTokEncoder(config)
        self.quantizer = VectorQuantizer(
            dim=config.codebook_dim, codebook_size=config.codebook_size, l2_norm=config.l2_norm,
            beta=config.commitment_beta,
            behaviours=[DeadCodeReinit(anchor="closest", decay=0.99)] if config.dead_code_restarts else (),
        )
        self.decoder = TiTokDecoder(config)
        self.pixel_codebook = None
        self.pixel_decoder = None
        if config.decoder_type == "maskgit":
            self.pixel_codebook = nn.Parameter(torch.empty(config.maskgit_codebook_size, config.maskgit_z_channels))
        if config.decoder_type in MASKGIT_DECODER_TYPES:
            self.pixel_decoder = MaskGITDecoder(
                config.num_channels, config.maskgit_base_channels, config.maskgit_channel_multipliers,
                config.maskgit_num_res_blocks, config.maskgit_z_channels,
            )
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        """The official init: ViT linears/convs truncated N(0, 0.02) (``initializer_range``) with zero biases, except the fused
        q/k/v projections, embeddings N(0, width^-1); the MaskGIT decoder keeps PyTorch's default (it is
        loaded from a pretrained MaskGIT-VQGAN; ``decoder_type="conv"`` trains it from there).

        The official blocks use ``nn.MultiheadAttention``, whose ``in_proj_weight`` is a bare parameter
        that the official ``_init_weights`` (which visits ``nn.Linear`` / ``nn.Conv*`` only) never
        touches: it keeps PyTorch's Xavier-uniform init over the stacked (3 width, width) matrix (std
        sqrt(2 / (4 width)): 0.026 at width 768, 0.088 at width 64) and a zero bias; ``out_proj`` is an
        ``nn.Linear`` and gets N(0, 0.02)."""
        super()._init_weights(module)
        if isinstance(module, (TiTokEncoder, TiTokDecoder)):
            # Children are initialised before their parent: this overrides the default above.
            for child in module.modules():
                if isinstance(child, (nn.Linear, nn.Conv2d)):
                    init.trunc_normal_(child.weight, mean=0.0, std=self.config.initializer_range)
                    if child.bias is not None:
                        init.zeros_(child.bias)
            for child in module.modules():
                if isinstance(child, ViTAttention):
                    init.xavier_uniform_(child.qkv.weight)
            for parameter in module.parameters(recurse=False):
                init.normal_(parameter, std=parameter.shape[-1] ** -0.5)
        elif isinstance(module, TiTokModel) and module.pixel_codebook is not None:
            init.uniform_(module.pixel_codebook, -1.0 / module.pixel_codebook.shape[0], 1.0 / module.pixel_codebook.shape[0])

    @property
    def downsample_factor(self) -> int:
        return self.config.patch_size

    @property
    def num_latent_tokens(self) -> int:
        return self.config.num_latent_tokens

    # -- checks: TiTok's learned positions fix the image size and the token count --------
    def check_pixel_values(self, pixel_values) -> None:
        check_pixel_values(pixel_values, self.config.num_channels, self.downsample_factor)
        size = self.config.image_size
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f"TiTok has learned positions for {size}x{size} images only; got {tuple(pixel_values.shape[-2:])}. "
                f"Resize or crop to {size}x{size} (VQImageProcessor(size={size}) does this)."
            )
        self.check_dtype(pixel_values, "pixel_values")

    def latent_shape(self) -> tuple:
        dim, tokens = self.config.codebook_dim, self.config.num_latent_tokens
        return (dim, tokens), f"(batch, {dim}, {tokens}) (codebook_dim, num_latent_tokens)"

    def decode_indices(self, indices: torch.Tensor, return_dict: bool = True):
        if isinstance(indices, torch.Tensor) and indices.ndim == 2 and indices.shape[1] != self.num_latent_tokens:
            raise ValueError(
                f"This TiTok decodes sequences of {self.num_latent_tokens} tokens; got indices of shape {tuple(indices.shape)}."
            )
        return super().decode_indices(indices, return_dict=return_dict)

    # -- the three steps -----------------------------------------------------------------
    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.config.zero_one_pixels:
            pixel_values = pixel_values * 0.5 + 0.5
        return self.encoder(pixel_values)

    def quantize(self, latents: torch.Tensor) -> VQEncoderOutput:
        """(B, D, N) latents -> quantized (B, D, N) and indices (B, N)."""
        out = self.quantizer(latents.transpose(1, 2))
        return VQEncoderOutput(
            quantized=out.quantized.transpose(1, 2).contiguous(),
            indices=out.indices,
            latents=latents,
            quantizer_loss=out.loss,
            loss_terms=out.loss_terms,
            perplexity=out.perplexity,
        )

    def indices_to_quantized(self, indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.indices_to_codes(indices).transpose(1, 2).contiguous()

    def decode_logits(self, quantized: torch.Tensor) -> torch.Tensor:
        """``decoder_type="maskgit"``: logits (B, maskgit_codebook_size, G, G) over the MaskGIT-VQGAN codes
        of each 16x16 cell (the target of two-stage training's first stage)."""
        if self.config.decoder_type != "maskgit":
            raise ValueError('decode_logits() needs decoder_type="maskgit"; this model decodes pixels directly.')
        return self.decoder(quantized)

    def decode_latents(self, quantized: torch.Tensor) -> torch.Tensor:
        out = self.decoder(quantized)
        if self.config.decoder_type == "maskgit":
            # Soft MaskGIT-VQGAN latents: the softmax over codes mixes the codebook rows.
            out = self.pixel_decoder(torch.einsum("bkhw,kd->bdhw", out.softmax(dim=1), self.pixel_codebook))
        elif self.config.decoder_type == "conv":
            out = self.pixel_decoder(out)
        if self.config.zero_one_pixels:
            out = out * 2 - 1
        return out

    @property
    def last_layer(self) -> torch.Tensor:
        """The final conv weight (where the adaptive GAN weight is measured)."""
        return self.pixel_decoder.last_layer if self.pixel_decoder is not None else self.decoder.conv_out.weight


__all__ = ["TiTokDecoder", "TiTokEncoder", "TiTokModel"]
