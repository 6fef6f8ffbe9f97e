"""Frozen teachers: loading by path, features against hand-composed references, frozen, no random fallback."""

import numpy as np
import pytest
import torch
from tiny_teachers import TINY_HIDDEN, TINY_PROJECTION, save_tiny_teacher

from hf_vq.modules.teachers import IMAGENET_MEAN, IMAGENET_STD, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, FrozenTeacher


@pytest.fixture(scope="module")
def teacher_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    return {kind: save_tiny_teacher(kind, root / kind) for kind in ("clip", "clip_vision", "dino", "dinov2")}


def _normalised(pixels, mean, std):
    """The teacher input computed independently in numpy."""
    x = (pixels.numpy().astype(np.float64) + 1) / 2
    return torch.from_numpy(((x - np.array(mean)[None, :, None, None]) / np.array(std)[None, :, None, None]).astype(np.float32))


def test_clip_features_match_the_composed_reference(teacher_dirs):
    from transformers import CLIPModel

    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    full = CLIPModel.from_pretrained(teacher_dirs["clip"]).eval()
    with torch.no_grad():
        hidden = full.vision_model(pixel_values=_normalised(pixels, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)).last_hidden_state
        patches = hidden[:, 1:]
        normed = full.vision_model.post_layernorm(patches)
        projected = normed @ full.visual_projection.weight.t()
    expected = {"projected": projected, "post_layernorm": normed, "last_hidden_state": patches}
    for features, reference in expected.items():
        teacher = FrozenTeacher.from_pretrained(teacher_dirs["clip"], features=features)
        out = teacher(pixels)
        assert out.shape == (2, 16, TINY_PROJECTION if features == "projected" else TINY_HIDDEN)
        assert teacher.feature_dim == out.shape[-1] and teacher.num_patches == 16
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


def test_dino_and_dinov2_patch_tokens_are_final_layernorm_outputs(teacher_dirs):
    from transformers import Dinov2Model, ViTModel

    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    for kind, model_class in (("dino", ViTModel), ("dinov2", Dinov2Model)):
        kwargs = {"add_pooling_layer": False} if kind == "dino" else {}
        reference_model = model_class.from_pretrained(teacher_dirs[kind], **kwargs).eval()
        with torch.no_grad():
            embeddings = reference_model.embeddings(_normalised(pixels, IMAGENET_MEAN, IMAGENET_STD))
            if kind == "dino":
                hidden = embeddings
                for layer in reference_model.layers:
                    hidden = layer(hidden)
            else:
                hidden = reference_model.encoder(embeddings).last_hidden_state
            reference = reference_model.layernorm(hidden)[:, 1:]
        teacher = FrozenTeacher.from_pretrained(teacher_dirs[kind], image_size=32)
        torch.testing.assert_close(teacher(pixels), reference, atol=1e-5, rtol=1e-5)
        assert teacher.kind == kind and teacher.feature_dim == TINY_HIDDEN


def test_inputs_are_resized_to_the_protocol_resolution(teacher_dirs):
    teacher = FrozenTeacher.from_pretrained(teacher_dirs["clip"])
    assert teacher.image_size == 32
    # A flat image stays flat through any resize: 64x64 in -> the normalised 32x32 image out.
    colour = torch.tensor([-0.5, 0.2, 0.9])
    large = colour.view(1, 3, 1, 1).expand(1, 3, 64, 64)
    expected = _normalised(colour.view(1, 3, 1, 1).expand(1, 3, 32, 32).contiguous(), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
    torch.testing.assert_close(teacher.preprocess(large), expected, atol=1e-5, rtol=1e-5)
    small = torch.rand(1, 3, 32, 32) * 2 - 1
    assert teacher(large).shape == teacher(small).shape == (1, 16, TINY_PROJECTION)
    bigger = FrozenTeacher.from_pretrained(teacher_dirs["clip"], image_size=64)
    assert bigger(small).shape == (1, 64, TINY_PROJECTION)  # position embeddings interpolated


def test_teacher_is_frozen_and_stays_in_eval(teacher_dirs):
    teacher = FrozenTeacher.from_pretrained(teacher_dirs["dino"])
    assert not any(p.requires_grad for p in teacher.parameters())
    wrapper = torch.nn.Sequential(teacher)
    wrapper.train()
    assert not teacher.training and not teacher.backbone.training
    pixels = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    assert not teacher(pixels).requires_grad


def test_no_random_teacher_is_ever_substituted(teacher_dirs, tmp_path):
    # A CLIPVisionModel checkpoint has no visual_projection: asking for projected features is an error.
    with pytest.raises(ValueError, match="visual_projection"):
        FrozenTeacher.from_pretrained(teacher_dirs["clip_vision"], features="projected")
    assert FrozenTeacher.from_pretrained(teacher_dirs["clip_vision"], features="post_layernorm").feature_dim == TINY_HIDDEN
    with pytest.raises(ValueError, match="Could not load the teacher"):
        FrozenTeacher.from_pretrained(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="features"):
        FrozenTeacher.from_pretrained(teacher_dirs["dino"], features="projected")
