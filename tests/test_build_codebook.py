"""hf-vq build-codebook: per-class k-means of teacher features on a tiny image folder with a tiny teacher."""

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_teachers import TINY_PROJECTION, save_tiny_teacher

from hf_vq.cli.main import main as cli_main
from hf_vq.data.teacher_codebook import load_codebook
from hf_vq.modules.teachers import FrozenTeacher
from hf_vq.processing.image_processing_vq import center_crop_arr


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("codebook")
    teacher = save_tiny_teacher("clip", root / "teacher")
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / "images" / label).mkdir(parents=True)
        for index in range(3):
            array = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(array).save(root / "images" / label / f"{index}.png")
    return root, teacher


def _class_features(teacher_path, folder, pool):
    """Teacher features of one class, pooled independently in numpy (the crop is the documented ADM crop)."""
    teacher = FrozenTeacher.from_pretrained(teacher_path)
    rows = []
    for path in sorted(folder.glob("*.png")):
        crop = center_crop_arr(Image.open(path).convert("RGB"), 32)
        pixels = torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        tokens = teacher(pixels)[0].numpy().reshape(4, 4, -1)
        pooled = tokens.reshape(4 // pool, pool, 4 // pool, pool, -1).mean((1, 3)).reshape(-1, tokens.shape[-1])
        rows.append(pooled)
    return np.concatenate(rows)


def test_build_codebook_per_class_is_a_lloyd_fixed_point_and_resumes(tiny_setup, monkeypatch):
    root, teacher = tiny_setup
    output = root / "codebook.safetensors"
    argv = ["build-codebook", "--teacher", teacher, "--data", str(root / "images"), "--codes", "8",
            "--output", str(output), "--pool", "2", "--batch-size", "2"]
    assert cli_main(argv) == 0
    codebook = load_codebook(output)
    assert codebook.shape == (8, TINY_PROJECTION)
    for position, label in enumerate(("cat", "dog")):  # class order: imagefolder labels sorted by name
        features = _class_features(teacher, root / "images" / label, pool=2)
        assert features.shape == (12, TINY_PROJECTION)
        centres = codebook[4 * position : 4 * position + 4].numpy().astype(np.float64)
        # Converged k-means of this class's features: every centre is the mean of the features closest to it.
        assignment = ((features[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        for code in range(4):
            if (assignment == code).any():
                np.testing.assert_allclose(centres[code], features[assignment == code].mean(0), atol=1e-5)
        assert len(set(assignment.tolist())) == 4

    # Resume: a rerun finds both classes finished and extracts nothing.
    import hf_vq.data.teacher_codebook as module

    monkeypatch.setattr(module, "extract_teacher_features", lambda *a, **k: pytest.fail("features recomputed"))
    output.unlink()
    assert cli_main(argv) == 0
    torch.testing.assert_close(load_codebook(output), codebook, atol=0, rtol=0)


def test_build_codebook_refuses_uneven_codes_and_too_many_codes(tiny_setup, tmp_path, capsys):
    root, teacher = tiny_setup
    # User errors: exit status 2 and a message naming the problem (the CLI's convention).
    assert cli_main(["build-codebook", "--teacher", teacher, "--data", str(root / "images"), "--codes", "7",
                     "--output", str(tmp_path / "c.safetensors")]) == 2
    assert "cannot be split evenly over 2 classes" in capsys.readouterr().err
    assert cli_main(["build-codebook", "--teacher", teacher, "--data", str(root / "images"), "--codes", "40",
                     "--output", str(tmp_path / "c.safetensors"), "--pool", "4"]) == 2
    assert "fewer than its 20 codes" in capsys.readouterr().err
