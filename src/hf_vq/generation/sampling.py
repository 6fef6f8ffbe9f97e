"""Class-conditional autoregressive sampling for GPTs over image tokens (LlamaGen's sampler).

Works with any model that speaks the GPT interface of :class:`~hf_vq.LlamaGenGPTModel`:
``config.vocab_size`` / ``config.block_size`` / ``config.null_class_id``,
``model(input_ids, class_labels, cache=...)`` -> ``.logits`` and ``model.allocate_cache(batch, max_length)``.

One step: logits of the last position -> classifier-free guidance (batch [cond; null]) ->
temperature -> top-k -> top-p -> multinomial draw with the caller's generator.
"""


import functools
from collections.abc import Callable, Iterable

import torch
from tqdm.auto import tqdm

from ..utils.value_checks import batched_value_checks, check_values, run_value_checks

# LlamaGen divides by max(temperature, 1e-5): temperature 0 means (almost) greedy, not an error.
MIN_TEMPERATURE = 1e-5
# One default for every sampling entry point (generate, generate_images, the pipeline, hf-vq generate):
# LlamaGen's classifier-free guidance scale for GPT-B / GPT-L.
DEFAULT_GUIDANCE_SCALE = 2.0


def filter_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Set to -inf every logit below the k-th largest of its row (ties with the k-th are kept). 0 = off."""
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 disables it); got {top_k}.")
    if top_k == 0 or top_k >= logits.shape[-1]:
        return logits
    kth_largest = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering: keep the most probable tokens until their probability mass exceeds ``top_p``.

    A token is kept when the mass of the strictly more probable tokens (in sorted order) is at
    most ``top_p``, so the most probable token is always kept and the token that crosses the
    threshold is kept too (LlamaGen's rule). 1.0 = off.
    """
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 disables it); got {top_p}.")
    if top_p == 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    remove_sorted = mass_before > top_p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def classifier_free_guidance(cond_logits: torch.Tensor, uncond_logits: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale * (cond - uncond): scale 1 gives the conditional logits."""
    return uncond_logits + scale * (cond_logits - uncond_logits)


def sample_from_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, vocab) logits -> (B,) token ids: temperature, then top-k, then top-p, then a multinomial draw."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0; got {temperature}.")
    logits = logits.float() / max(temperature, MIN_TEMPERATURE)
    logits = filter_top_p(filter_top_k(logits, top_k), top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


def guidance_active(step: int, guidance_scale: float, cfg_interval: int) -> bool:
    """Whether image token ``step`` is guided.

    ``cfg_interval`` follows LlamaGen's ``--cfg-interval``: -1 guides every token; k >= 0 guides
    tokens 0 .. k + 1 (the prefill token plus the first k + 1 decoded ones) and then uses the
    conditional logits alone.
    """
    return guidance_scale > 1.0 and (cfg_interval < 0 or step <= cfg_interval + 1)


def check_class_labels(class_labels, num_classes: int) -> torch.Tensor:
    class_labels = torch.as_tensor(class_labels)
    if class_labels.ndim != 1 or class_labels.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"class_labels must be a 1D sequence of integers; got {class_labels.dtype} {tuple(class_labels.shape)}.")
    if class_labels.numel() == 0:
        raise ValueError("class_labels is empty: give at least one class.")
    check_values(torch.stack(torch.aminmax(class_labels)), functools.partial(_raise_for_class_range, num_classes))
    return class_labels.long()


def _raise_for_class_range(num_classes: int, values: list) -> None:
    low, high = (int(value) for value in values)
    if low < 0 or high >= num_classes:
        raise ValueError(f"class_labels must be in [0, {num_classes}); got values in [{low}, {high}].")


@torch.no_grad()
@batched_value_checks  # the class labels are read first, then every step's token checks once, at the end
def generate(
    model,
    class_labels: torch.Tensor | list,
    num_tokens: int | None = None,
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
    cfg_interval: int = -1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    progress_bar: bool | Callable[[Iterable], Iterable] = False,
) -> torch.LongTensor:
    """Sample (B, num_tokens) image tokens for ``class_labels`` (default: ``config.block_size`` tokens).

    ``guidance_scale`` > 1 runs the batch [cond; null class] and mixes the two logits with
    :func:`classifier_free_guidance`; values below 1 are refused (1 means no guidance).
    ``use_cache=False`` recomputes the whole prefix at every step (same result, for checks and
    benchmarks). ``generator`` makes the draws reproducible; it must live on the model's device.
    ``progress_bar``: True for a tqdm bar, or a wrapper of the step iterable (a pipeline's ``progress_bar``).
    """
    config = model.config
    if guidance_scale < 1.0:
        raise ValueError(f"guidance_scale must be >= 1 (1 disables guidance); got {guidance_scale}.")
    num_tokens = config.block_size if num_tokens is None else num_tokens
    if not 1 <= num_tokens <= config.block_size:
        raise ValueError(f"num_tokens must be in [1, block_size = {config.block_size}]; got {num_tokens}.")
    device = model.device
    class_labels = check_class_labels(class_labels, config.num_classes).to(device)
    run_value_checks()  # a wrong class is refused before sampling; the tokens' checks are read at the end
    batch = class_labels.shape[0]

    guided = guidance_scale > 1.0
    if guided:
        null_labels = torch.full_like(class_labels, config.null_class_id)
        model_labels = torch.cat([class_labels, null_labels])
    else:
        model_labels = class_labels
    # The last sampled token is never fed back, so the sequence holds the class token + num_tokens - 1 tokens.
    cache = model.allocate_cache(model_labels.shape[0], num_tokens) if use_cache else None

    tokens = torch.empty(batch, 0, dtype=torch.long, device=device)
    steps = range(num_tokens)
    if callable(progress_bar):
        steps = progress_bar(steps)
    else:
        steps = tqdm(steps, desc="Sampling tokens", disable=not progress_bar, leave=False)
    for step in steps:
        model_tokens = torch.cat([tokens, tokens]) if guided else tokens
        if cache is None:
            logits = model(input_ids=model_tokens, class_labels=model_labels).logits[:, -1]
        elif step == 0:
            logits = model(class_labels=model_labels, cache=cache).logits[:, -1]
        else:
            logits = model(input_ids=model_tokens[:, -1:], cache=cache).logits[:, -1]
        if guided:
            cond_logits, uncond_logits = logits.chunk(2)
            logits = (
                classifier_free_guidance(cond_logits, uncond_logits, guidance_scale)
                if guidance_active(step, guidance_scale, cfg_interval)
                else cond_logits
            )
        next_token = sample_from_logits(logits, temperature, top_k, top_p, generator)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
    return tokens


__all__ = [
    "DEFAULT_GUIDANCE_SCALE",
    "classifier_free_guidance",
    "filter_top_k",
    "filter_top_p",
    "generate",
    "guidance_active",
    "sample_from_logits",
]
