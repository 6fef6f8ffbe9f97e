"""Cluster (IU-tokenizer paper): frozen teacher patch features -> VectorQuantizer with CVQ anchors [-> pixel decoder].

Official code: magic-research/vector_quantization ``vq/algorithms/cluster`` (``ClusterEncoder``
runs the teacher; ``Cluster`` adds the quantizer loss) with ``VQGANQuantizer`` (U(-1/K, 1/K)
codebook, ``CosineDistance``), ``CodebookLoss`` and ``CVQVAECallback(NearestAnchor)``. Ours:
:class:`~hf_vq.modules.teachers.FrozenTeacher` -> ``VectorQuantizer(distance="cosine",
beta=0)`` (the commitment term would train nothing: the encoder is frozen) composed with
``DeadCodeReinit(anchor="closest")``. Only the codebook has parameters in stage 1.

The teacher is held outside the module tree: it is not in ``state_dict`` (never saved in the
tokenizer's weights) nor in ``parameters()`` (never optimised), but it moves with ``.to()``.
It is loaded from ``config.teacher`` when the model is built or loaded (``from_pretrained``),
or passed explicitly (``teacher=``); it is never replaced by a random one.

Codes can also be set offline: :meth:`VQClusterModel.init_codebook_from_kmeans` (our
bounded-memory :class:`~hf_vq.quantizers.clustering.KMeans` on teacher features) or
:meth:`VQClusterModel.from_codebook` with an ``hf-vq build-codebook`` file.

Stage 2 (:mod:`hf_vq.models.pixel_decoder`): with ``config.pixel_decoder`` the model holds a
LlamaGen decoder behind the frozen teacher and codebook, and decodes indices to images.
"""

import os

import torch

from ...modules.teachers import FrozenTeacher
from ...quantizers import DeadCodeReinit, VectorQuantizer
from ...quantizers.clustering import KMeans, KMeansResult
from ..base import VQModelOutput, VQTokenizerPreTrainedModel, reject_unknown_arguments
from ..pixel_decoder import PixelDecoderMixin
from .configuration_vq_cluster import VQClusterConfig


def _building_on_meta_device() -> bool:
    """True inside transformers' ``from_pretrained``, which builds models on the meta device."""
    return torch.empty(0).device.type == "meta"


class VQClusterModel(PixelDecoderMixin, VQTokenizerPreTrainedModel):
    config: VQClusterConfig
    config_class = VQClusterConfig
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("distance", "teacher_features")

    def __init__(self, config: VQClusterConfig, teacher: FrozenTeacher | None = None):
        super().__init__(config)
        object.__setattr__(self, "_teacher", None)  # outside the module tree: see the module docstring
        self.quantizer = VectorQuantizer(
            dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            distance=config.distance,
            beta=0.0,
            behaviours=[DeadCodeReinit(anchor=config.anchor, decay=config.usage_decay)],
        )
        self.build_pixel_decoder()
        self.post_init()
        if teacher is not None:
            self.set_teacher(teacher)
        elif not _building_on_meta_device():
            self.set_teacher(self.load_teacher())

    # -- the frozen teacher ----------------------------------------------------------------
    def load_teacher(self) -> FrozenTeacher:
        """Load ``config.teacher`` (Hub name or folder) as the config describes it."""
        return FrozenTeacher.from_pretrained(
            self.config.teacher, features=self.config.teacher_features, image_size=self.config.image_size
        )

    def set_teacher(self, teacher: FrozenTeacher) -> None:
        """Install the frozen teacher, after checking it gives what the config (and the codebook) expect."""
        if not isinstance(teacher, FrozenTeacher):
            raise ValueError(f"teacher must be a hf_vq.modules.teachers.FrozenTeacher; got {type(teacher).__name__}.")
        config = self.config
        problems = []
        if teacher.features != config.teacher_features:
            problems.append(f"features {teacher.features!r} (config.teacher_features = {config.teacher_features!r})")
        if teacher.patch_size != config.teacher_patch_size:
            problems.append(f"patch size {teacher.patch_size} (config.teacher_patch_size = {config.teacher_patch_size})")
        if teacher.feature_dim != config.codebook_dim:
            problems.append(f"{teacher.feature_dim}-d features (config.codebook_dim = {config.codebook_dim})")
        if teacher.image_size != config.image_size:
            problems.append(f"image size {teacher.image_size} (config.image_size = {config.image_size})")
        if problems:
            raise ValueError(
                f"The teacher {teacher.name_or_path or type(teacher.backbone).__name__} does not fit this "
                f"{type(self).__name__}: it has " + ", ".join(problems) + ". Set the config to the teacher's values "
                "(a new model) or pass the teacher the codebook was learned on."
            )
        parameter = next(self.parameters(), None)
        if parameter is not None:
            teacher = teacher.to(parameter.device)
        object.__setattr__(self, "_teacher", teacher)

    @property
    def teacher(self) -> FrozenTeacher:
        """The frozen teacher (loaded from ``config.teacher`` on first use when the model was built without it)."""
        if self._teacher is None:
            self.set_teacher(self.load_teacher())
        return self._teacher

    def _apply(self, fn, recurse=True):
        # .to() / .cuda() / .half() move the teacher too, although it is not a submodule.
        super()._apply(fn, recurse)
        if self.__dict__.get("_teacher") is not None:
            self._teacher._apply(fn)
        return self

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, teacher: FrozenTeacher | None = None, **kwargs):
        """transformers' ``from_pretrained``, then the teacher: ``teacher`` when given, else ``config.teacher``
        (pass ``teacher=...`` in kwargs of AutoModel, or override the path with ``teacher="folder"``)."""
        if isinstance(teacher, str):
            kwargs["teacher"] = teacher  # a config override: the path of the same teacher elsewhere
            teacher = None
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.set_teacher(teacher if teacher is not None else model.load_teacher())
        return loaded

    # -- encoder: the teacher's patch grid -------------------------------------------------
    @property
    def downsample_factor(self) -> int:
        return self.config.teacher_patch_size

    def encode_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, image_size, image_size) -> teacher features (B, codebook_dim, grid, grid)."""
        size = self.config.image_size
        if tuple(pixel_values.shape[-2:]) != (size, size):
            raise ValueError(
                f"{type(self).__name__} encodes {size}x{size} images (its teacher's resolution, config.image_size); "
                f"got {pixel_values.shape[-2]}x{pixel_values.shape[-1]}. Crop or resize with VQImageProcessor."
            )
        features = self.teacher(pixel_values).to(self.quantizer.codebook.dtype)  # (B, grid * grid, D), no grad
        grid = self.config.grid_size
        return features.transpose(1, 2).reshape(features.shape[0], features.shape[2], grid, grid)

    # -- stage 1: the clustering loss ------------------------------------------------------
    def stage1_forward(self, pixel_values: torch.Tensor, return_dict: bool = True, **kwargs) -> VQModelOutput:
        """Stage 1 (no pixel decoder): the codes and the clustering loss (codebook term); no reconstruction."""
        reject_unknown_arguments(type(self).__name__, kwargs, ("pixel_values", "return_dict"))
        encoded = self.encode(pixel_values)
        output = VQModelOutput.from_encoding(encoded)
        return output if return_dict else output.to_tuple()

    # -- offline codebooks -----------------------------------------------------------------
    @torch.no_grad()
    def teacher_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels -> the (B * grid * grid, codebook_dim) vectors the quantizer sees (for offline k-means)."""
        self.check_pixel_values(pixel_values)
        latents = self.encode_latents(pixel_values)
        return latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])

    @torch.no_grad()
    def set_codebook(self, codes: torch.Tensor) -> None:
        """Install a (codebook_size, codebook_dim) codebook (k-means centres, an ``hf-vq build-codebook`` file)."""
        expected = (self.config.codebook_size, self.config.codebook_dim)
        if not isinstance(codes, torch.Tensor) or tuple(codes.shape) != expected:
            raise ValueError(f"The codebook must be a tensor of shape {expected} (codebook_size, codebook_dim); "
                             f"got {tuple(getattr(codes, 'shape', ())) or type(codes).__name__}.")
        self.quantizer.set_codes(codes.to(self.quantizer.codebook))

    def init_codebook_from_kmeans(self, features: torch.Tensor, *, max_iters: int = 50, tol: float = 1e-4,
                                  init: str = "k-means++", seed: int = 0, state_path=None,
                                  progress: bool = False) -> KMeansResult:
        """Set the codebook offline: k-means (``hf_vq.quantizers.clustering.KMeans``, bounded memory, resumable
        with ``state_path``) of teacher features (N, codebook_dim), e.g. ``teacher_features(pixels)`` of
        a data set. Returns the k-means result (centres, inertia)."""
        result = KMeans(self.config.codebook_size, max_iters=max_iters, tol=tol, init=init, seed=seed).fit(
            features.float(), state_path=state_path, progress=progress)
        self.set_codebook(result.centroids)
        return result

    @classmethod
    def from_codebook(cls, config: VQClusterConfig, codebook: "torch.Tensor | str | os.PathLike",
                      teacher: FrozenTeacher | None = None) -> "VQClusterModel":
        """A model whose codebook is set offline: a tensor or an ``hf-vq build-codebook`` file (tensor ``codebook``;
        build it with ``--teacher-features post_layernorm --teacher-image-size IMAGE_SIZE --pool 1 --no-per-class``)."""
        if not isinstance(codebook, torch.Tensor):
            from safetensors.torch import load_file

            tensors = load_file(str(codebook))
            if "codebook" not in tensors:
                raise ValueError(f"{codebook} has no 'codebook' tensor (keys {sorted(tensors)}); make it with hf-vq build-codebook.")
            codebook = tensors["codebook"]
        model = cls(config, teacher=teacher)
        model.set_codebook(codebook)
        return model


__all__ = ["VQClusterModel"]
