"""Helpers every layer of hf_vq may use; this package imports no other hf_vq layer.

Import the submodules directly (``from hf_vq.utils.distributed import all_reduce_sum``,
``from hf_vq.utils.images import make_grid``): image grids, metric tables, model cards,
hub uploads, user errors, lazy exports, distributed reductions.
"""
