"""CVQ-VAE's quantizer on the taming VQGAN backbone: the IU-tokenizer paper's CVQ tokenizer
(magic-research/vector_quantization, configs/cvqvae/: VQGAN 8192 x 256, cosine distance, EMA usage + nearest anchors)."""

from huggingface_hub.dataclasses import strict

from ...quantizers import ANCHORS, DISTANCES
from ..vqgan.configuration_vqgan import VQGANConfig


@strict
class VQGANCVQConfig(VQGANConfig):
    """The VQGAN encoder/decoder with a dead-code re-initialised (CVQ) codebook.

    Args:
        distance: "cosine" (the IU config: search by cosine, output the raw codes) or "euclidean".
        anchor: "closest" (the IU config's ``NearestAnchor``), "random" or "probabilistic".
        usage_decay: EMA decay of the code usage (0.99).
        legacy_beta: False: the IU VQGANLoss puts ``commitment_beta`` on the commitment term.
    """

    model_type = "vqgan_cvq"

    codebook_size: int = 8192
    distance: str = "cosine"
    anchor: str = "closest"
    usage_decay: float = 0.99
    legacy_beta: bool = False

    def __post_init__(self, **kwargs):
        if self.distance not in DISTANCES:
            raise ValueError(f"Unknown distance {self.distance!r}; choose one of {DISTANCES}.")
        if self.anchor not in ANCHORS:
            raise ValueError(f"Unknown anchor {self.anchor!r}; choose one of {ANCHORS}.")
        super().__post_init__(**kwargs)


__all__ = ["VQGANCVQConfig"]
