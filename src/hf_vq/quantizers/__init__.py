"""Quantizers: pure torch modules with one contract.

Input ``(..., dim)`` channel-last; output :class:`QuantizerOutput` with ``quantized``
(straight-through), ``indices``, ``loss`` and ``loss_terms``; ``indices_to_codes(indices)``
inverts the lookup.
"""

from .behaviours import ANCHORS, CodebookBehaviour, DeadCodeReinit, EMAUpdate, EntropyRegularization, KMeansInit, kmeans
from .fsq import FSQ
from .lfq import LFQ
from .nearest import nearest_code
from .output import QuantizerOutput, batch_perplexity
from .simvq import SimVQ
from .usage import CodebookUsage
from .vector_quantizer import DISTANCES, VectorQuantizer

__all__ = [
    "ANCHORS",
    "DISTANCES",
    "CodebookBehaviour",
    "CodebookUsage",
    "DeadCodeReinit",
    "EMAUpdate",
    "EntropyRegularization",
    "FSQ",
    "KMeansInit",
    "LFQ",
    "QuantizerOutput",
    "SimVQ",
    "VectorQuantizer",
    "batch_perplexity",
    "kmeans",
    "nearest_code",
]
