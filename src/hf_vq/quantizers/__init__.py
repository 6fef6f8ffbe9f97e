"""Quantizers: pure torch modules on one :class:`Quantizer` base.

Input ``(..., dim)`` channel-last, floating point and finite (else ``ValueError``); output
:class:`QuantizerOutput` with ``quantized`` (straight-through), ``indices``, ``loss`` and
``loss_terms`` (computed in training or with autograd on; empty at inference);
``indices_to_codes(indices)`` inverts the lookup. Codebook behaviours change the codebook
only through ``VectorQuantizer.set_codes``.
"""

from .base import Quantizer
from .behaviours import ANCHORS, CodebookBehaviour, DeadCodeReinit, EMAUpdate, EntropyRegularization, KMeansInit, NormalizedEMAUpdate, kmeans
from .entropy import codebook_entropy_loss
from .fsq import FSQ
from .ibq import IBQ, max_inner_product
from .lfq import LFQ
from .nearest import nearest_code
from .output import QuantizerOutput, batch_perplexity
from .projected_codebook import ProjectedCodebookQuantizer
from .simvq import SimVQ
from .usage import CodebookUsage
from .vector_quantizer import DISTANCES, L2_NORM_MODES, VectorQuantizer, l2_norm_mode

__all__ = [
    "ANCHORS",
    "DISTANCES",
    "CodebookBehaviour",
    "CodebookUsage",
    "DeadCodeReinit",
    "EMAUpdate",
    "EntropyRegularization",
    "FSQ",
    "IBQ",
    "KMeansInit",
    "L2_NORM_MODES",
    "LFQ",
    "NormalizedEMAUpdate",
    "ProjectedCodebookQuantizer",
    "Quantizer",
    "QuantizerOutput",
    "SimVQ",
    "VectorQuantizer",
    "batch_perplexity",
    "codebook_entropy_loss",
    "kmeans",
    "l2_norm_mode",
    "max_inner_product",
    "nearest_code",
]
