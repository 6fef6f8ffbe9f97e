"""LlamaGen class-conditional GPT (Sun et al. 2024, "Autoregressive Model Beats Diffusion").

A Llama decoder over image tokens: the class embedding is the first token, then the image
tokens; pre-norm blocks with RMSNorm, fused q/k/v attention with rotary positions (2D over
the token grid, or 1D for 1D tokenizers), SwiGLU feed-forward, no biases anywhere and an
untied, zero-initialised output head. Position ``i`` of the output predicts image token ``i``.

Generation keeps keys and values in a preallocated :class:`LlamaGenKVCache` (LlamaGen's static
cache); the sampling loop lives in ``hf_vq.generation``.
"""

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from ...utils.value_checks import batched_value_checks, check_values, within_queued_range
from ..loading import StrictLoadingMixin
from .configuration_llamagen_gpt import LlamaGenGPTConfig

IGNORE_INDEX = -100
# The class token is one position: the official c2i model keeps ``cls_token_num = 1``.
NUM_CLASS_TOKENS = 1


@dataclass
class LlamaGenGPTOutput(ModelOutput):
    """``loss``: mean cross-entropy over the labelled positions; ``logits``: (B, S, vocab_size) in fp32."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


class LlamaGenKVCache:
    """Preallocated keys and values of every layer, for ``batch_size`` sequences of up to ``max_length``.

    ``length`` is the number of positions already written; the model appends after it.
    """

    def __init__(self, config: LlamaGenGPTConfig, batch_size: int, max_length: int, device, dtype):
        shape = (batch_size, config.key_value_heads, max_length, config.head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.batch_size = batch_size
        self.max_length = max_length
        self.length = 0

    def update(self, layer_index: int, keys: torch.Tensor, values: torch.Tensor):
        """Write (B, heads, S, head_dim) at positions [length, length + S) and return everything written so far."""
        end = self.length + keys.shape[2]
        self.keys[layer_index][:, :, self.length : end] = keys
        self.values[layer_index][:, :, self.length : end] = values
        return self.keys[layer_index][:, :, :end], self.values[layer_index][:, :, :end]


# -- rotary positions ---------------------------------------------------------------------
def rotary_angles_1d(num_positions: int, rotary_dim: int, base: float) -> torch.Tensor:
    """(num_positions, rotary_dim // 2) angles ``position * base^(-2j / rotary_dim)``."""
    inverse_frequencies = 1.0 / (base ** (torch.arange(0, rotary_dim, 2)[: rotary_dim // 2].float() / rotary_dim))
    return torch.outer(torch.arange(num_positions).float(), inverse_frequencies)


def rotary_cos_sin_table(config: LlamaGenGPTConfig) -> torch.Tensor:
    """(1 + block_size, head_dim // 2, 2) cos / sin of every position, the class token first.

    2D: half the rotary pairs turn with the row, the other half with the column (row-major
    grid order). The class token's row is all zeros, as in the official code: this zeroes its
    query and key (it still passes its value), so it is not an identity rotation.
    """
    if config.rope_type == "2d":
        grid, half_dim = config.grid_size, config.head_dim // 2
        axis_angles = rotary_angles_1d(grid, half_dim, config.rope_base)  # (grid, head_dim // 4)
        angles = torch.cat(
            [axis_angles[:, None, :].expand(grid, grid, -1), axis_angles[None, :, :].expand(grid, grid, -1)], dim=-1
        ).flatten(0, 1)
    else:
        angles = rotary_angles_1d(config.block_size, config.head_dim, config.rope_base)
    table = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    class_rows = torch.zeros(NUM_CLASS_TOKENS, config.head_dim // 2, 2)
    return torch.cat([class_rows, table])


def apply_rotary(x: torch.Tensor, cos_sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2j], x[2j+1]) of x (B, S, heads, head_dim) by cos_sin (S, head_dim // 2, 2), in fp32."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = cos_sin[None, :, None, :, 0], cos_sin[None, :, None, :, 1]
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1)
    return rotated.flatten(3).type_as(x)


# -- blocks -------------------------------------------------------------------------------
class LlamaGenRMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 for stability under bf16, scale in the input dtype.
        x_fp32 = x.float()
        normed = x_fp32 * torch.rsqrt(x_fp32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class LlamaGenDropPath(nn.Module):
    """Stochastic depth: in training, drop a sample's whole residual branch with probability ``rate``."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class LlamaGenAttention(nn.Module):
    def __init__(self, config: LlamaGenGPTConfig, layer_index: int):
        super().__init__()
        self.layer_index = layer_index
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.key_value_heads
        self.head_dim = config.head_dim
        kv_dim = self.num_kv_heads * self.head_dim
        self.split_sizes = [config.hidden_size, kv_dim, kv_dim]
        self.qkv_proj = nn.Linear(config.hidden_size, sum(self.split_sizes), bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.attention_dropout = config.attention_dropout
        self.residual_dropout = nn.Dropout(config.residual_dropout)

    def forward(self, x, cos_sin, cache: LlamaGenKVCache | None = None) -> torch.Tensor:
        batch, length, _ = x.shape
        query, key, value = self.qkv_proj(x).split(self.split_sizes, dim=-1)
        query = apply_rotary(query.view(batch, length, self.num_heads, self.head_dim), cos_sin).transpose(1, 2)
        key = apply_rotary(key.view(batch, length, self.num_kv_heads, self.head_dim), cos_sin).transpose(1, 2)
        value = value.view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)

        if cache is None:
            causal, mask = True, None
        else:
            start = cache.length
            key, value = cache.update(self.layer_index, key, value)
            # Query at position start + i sees keys 0 .. start + i.
            query_positions = torch.arange(start, start + length, device=x.device)
            key_positions = torch.arange(key.shape[2], device=x.device)
            causal, mask = False, key_positions[None, :] <= query_positions[:, None]
        if self.num_kv_heads != self.num_heads:
            key = key.repeat_interleave(self.num_heads // self.num_kv_heads, dim=1)
            value = value.repeat_interleave(self.num_heads // self.num_kv_heads, dim=1)
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, is_causal=causal,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, -1)
        return self.residual_dropout(self.o_proj(attended))


class LlamaGenFeedForward(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: LlamaGenGPTConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.dropout = nn.Dropout(config.ffn_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))


class LlamaGenBlock(nn.Module):
    def __init__(self, config: LlamaGenGPTConfig, layer_index: int, drop_path_rate: float):
        super().__init__()
        self.attention_norm = LlamaGenRMSNorm(config.hidden_size, config.norm_eps)
        self.attention = LlamaGenAttention(config, layer_index)
        self.ffn_norm = LlamaGenRMSNorm(config.hidden_size, config.norm_eps)
        self.feed_forward = LlamaGenFeedForward(config)
        self.drop_path = LlamaGenDropPath(drop_path_rate)

    def forward(self, x, cos_sin, cache=None):
        x = x + self.drop_path(self.attention(self.attention_norm(x), cos_sin, cache))
        return x + self.drop_path(self.feed_forward(self.ffn_norm(x)))


# -- the model ----------------------------------------------------------------------------
def check_input_ids(input_ids, vocab_size: int) -> None:
    """Image tokens: a (batch, num_tokens) integer tensor of codes in [0, vocab_size)."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"input_ids must be an integer torch.Tensor; got {getattr(input_ids, 'dtype', type(input_ids))}.")
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must have shape (batch, num_tokens); got {tuple(input_ids.shape)}.")
    # the values are read on the host: eagerly only (under torch.compile a graph break and a sync per step)
    if input_ids.numel() and not torch.compiler.is_compiling():
        check_values(torch.stack(torch.aminmax(input_ids)), functools.partial(_raise_for_input_id_range, vocab_size))


def _raise_for_input_id_range(vocab_size: int, values: list) -> None:
    low, high = (int(value) for value in values)
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"input_ids must be codes in [0, {vocab_size}) (vocab_size = the tokenizer's codebook_size); got values in "
            f"[{low}, {high}]. Were the tokens made by another tokenizer?"
        )


def _raise_for_label_range(vocab_size: int, values: list) -> None:
    low, high = (int(value) for value in values)
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"labels must be codes in [0, {vocab_size}) or {IGNORE_INDEX} (ignored); got values in [{low}, {high}]."
        )


def _raise_for_class_label_range(num_classes: int, values: list) -> None:
    low, high = (int(value) for value in values)
    if low < 0 or high > num_classes:
        raise ValueError(
            f"class_labels must be in [0, {num_classes}] ({num_classes} is the null class); "
            f"got values in [{low}, {high}]."
        )

class LlamaGenGPTPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config: LlamaGenGPTConfig
    config_class = LlamaGenGPTConfig
    base_model_prefix = "llamagen_gpt"
    main_input_name = "input_ids"
    _no_split_modules = ("LlamaGenBlock",)
    # Same weights, other function: heads split the fused q/k/v differently, RoPE moves the positions.
    function_config_fields = ("num_attention_heads", "num_key_value_heads", "rope_type", "rope_base", "block_size", "norm_eps")

    @torch.no_grad()
    def _init_weights(self, module):
        """N(0, initializer_range) for linears and embeddings, ones for norms; the output head starts at zero."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            if module is getattr(self, "lm_head", None):
                init.zeros_(module.weight)
            else:
                init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, LlamaGenRMSNorm):
            init.ones_(module.weight)


class LlamaGenGPTModel(LlamaGenGPTPreTrainedModel):
    """``model(input_ids, class_labels)`` -> logits (B, len(input_ids) + 1, vocab_size).

    ``labels`` (B, m) with m <= len(input_ids) + 1 give a loss on the first m positions; usually
    ``labels = input_ids`` (position i predicts token i). With a ``cache`` (see ``allocate_cache``)
    the new tokens are appended after the cached ones: the first call passes ``class_labels``
    (and optionally image tokens), the later calls pass only ``input_ids``.
    """

    def __init__(self, config: LlamaGenGPTConfig):
        super().__init__(config)
        # One extra row: the null class used for classifier-free guidance.
        self.class_embedding = nn.Embedding(config.num_classes + 1, config.hidden_size)
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.token_dropout = nn.Dropout(config.token_dropout)
        # Linearly increasing stochastic depth; plain Python so the model also builds on the meta device.
        last = max(config.num_hidden_layers - 1, 1)
        drop_path_rates = [config.drop_path_rate * index / last for index in range(config.num_hidden_layers)]
        self.layers = nn.ModuleList(
            LlamaGenBlock(config, index, rate) for index, rate in enumerate(drop_path_rates)
        )
        self.norm = LlamaGenRMSNorm(config.hidden_size, config.norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self._cos_sin_by_device = {}
        self.post_init()

    @property
    def max_sequence_length(self) -> int:
        return NUM_CLASS_TOKENS + self.config.block_size

    def rotary_table(self, device) -> torch.Tensor:
        # Computed in fp32 on first use per device; not a buffer, so checkpoints stay weights only.
        key = str(device)
        if key not in self._cos_sin_by_device:
            self._cos_sin_by_device[key] = rotary_cos_sin_table(self.config).to(device)
        return self._cos_sin_by_device[key]

    def allocate_cache(self, batch_size: int, max_length: int | None = None) -> LlamaGenKVCache:
        """A KV cache for ``batch_size`` sequences of up to ``max_length`` positions (class token included)."""
        max_length = max_length or self.max_sequence_length
        if max_length > self.max_sequence_length:
            raise ValueError(f"max_length {max_length} exceeds 1 + block_size = {self.max_sequence_length}.")
        return LlamaGenKVCache(self.config, batch_size, max_length, self.device, self.dtype)

    def embed_class_labels(self, class_labels: torch.Tensor) -> torch.Tensor:
        if class_labels.ndim != 1 or class_labels.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"class_labels must be a 1D integer tensor (batch,); got {class_labels.dtype} {tuple(class_labels.shape)}.")
        # the values are read on the host: eagerly only (under torch.compile a graph break and a sync per step)
        if not torch.compiler.is_compiling():
            check_values(torch.stack(torch.aminmax(class_labels)),
                         functools.partial(_raise_for_class_label_range, self.config.num_classes))
        if self.training and self.config.class_dropout_prob > 0:
            # Classifier-free guidance training: some labels become the null class.
            dropped = torch.rand(class_labels.shape[0], device=class_labels.device) < self.config.class_dropout_prob
            class_labels = torch.where(dropped, self.config.null_class_id, class_labels)
        return self.class_embedding(within_queued_range(class_labels, self.config.num_classes + 1))[:, None, :]

    @batched_value_checks
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        class_labels: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        cache: LlamaGenKVCache | None = None,
        return_dict: bool = True,
        **kwargs,
    ):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}.forward() got unexpected argument(s) {sorted(kwargs)}; it takes input_ids, "
                "class_labels, labels, cache and return_dict."
            )
        start = cache.length if cache is not None else 0
        if start == 0 and class_labels is None:
            raise ValueError("class_labels are required for a sequence that starts at the class token.")
        if start > 0 and class_labels is not None:
            raise ValueError("class_labels are only given on the first call with a cache (the class token is cached).")
        if class_labels is None and input_ids is None:
            raise ValueError("Give input_ids, class_labels or both.")

        pieces = []
        if class_labels is not None:
            pieces.append(self.embed_class_labels(class_labels))
        if input_ids is not None:
            check_input_ids(input_ids, self.config.vocab_size)
            pieces.append(self.token_embedding(within_queued_range(input_ids, self.config.vocab_size)))
        hidden = self.token_dropout(torch.cat(pieces, dim=1))
        end = start + hidden.shape[1]
        if end > self.max_sequence_length:
            raise ValueError(
                f"The sequence reaches position {end}, beyond 1 + block_size = {self.max_sequence_length} "
                "(the class token plus block_size image tokens)."
            )
        cos_sin = self.rotary_table(hidden.device)[start:end]

        for layer in self.layers:
            hidden = layer(hidden, cos_sin, cache)
        if cache is not None:
            cache.length = end
        logits = self.lm_head(self.norm(hidden)).float()

        loss = None
        if labels is not None:
            if labels.ndim != 2 or labels.shape[1] > logits.shape[1]:
                raise ValueError(
                    f"labels must have shape (batch, m) with m <= {logits.shape[1]} (the number of positions); "
                    f"got {tuple(labels.shape)}."
                )
            used = logits[:, : labels.shape[1]]
            targets = labels
            if labels.numel() and not torch.compiler.is_compiling():
                # Checked with the inputs (one host read): an out-of-range target would be an IndexError on a CPU
                # and a device-side assert on a GPU inside cross_entropy; while the check is queued the loss
                # uses clamped targets, and the call raises the check's error before returning it.
                real = labels != IGNORE_INDEX
                check_values(torch.stack(torch.aminmax(torch.where(real, labels, 0))),
                             functools.partial(_raise_for_label_range, self.config.vocab_size))
                targets = torch.where(real, within_queued_range(labels, self.config.vocab_size), labels)
            loss = F.cross_entropy(used.reshape(-1, used.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        output = LlamaGenGPTOutput(loss=loss, logits=logits)
        return output if return_dict else output.to_tuple()


__all__ = [
    "LlamaGenGPTModel",
    "LlamaGenGPTOutput",
    "LlamaGenGPTPreTrainedModel",
    "LlamaGenKVCache",
    "apply_rotary",
    "rotary_cos_sin_table",
]
