"""tokenize -> train-ar (with resume) -> generate -> convert, through the hf-vq CLI on tiny models."""

import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk
from PIL import Image

import hf_vq
from hf_vq.cli.main import main
from hf_vq.data.token_datasets import augmented_views, tokenize_dataset

FIXTURE = "tests/fixtures/llamagen_gpt_tiny.pt"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tokenizer")
    hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=32, codebook_size=64, codebook_dim=8, image_size=16)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)) for _ in range(6)]
    path = tmp_path_factory.mktemp("images")
    Dataset.from_dict({"image": images, "label": [0, 1, 2, 0, 1, 2]}).save_to_disk(path)
    return path


def test_views_flip_and_ten_crop():
    image = Image.fromarray(np.arange(20 * 20 * 3, dtype=np.uint8).reshape(20, 20, 3))
    plain, flipped = augmented_views(image, 16, "flip")
    np.testing.assert_array_equal(flipped, plain[:, ::-1])
    assert len(augmented_views(image, 16, "ten_crop")) == 10
    with pytest.raises(ValueError, match="augment"):
        augmented_views(image, 16, "rotate")


def test_tokenize_rows_equal_the_tokenizer_indices(tokenizer_dir, image_dataset):
    tokenizer = hf_vq.VQVAEModel.from_pretrained(tokenizer_dir).eval()
    dataset = load_from_disk(image_dataset)
    tokens = tokenize_dataset(tokenizer, dataset, augment="flip", batch_size=4)
    assert len(tokens) == 12 and tokens["class_labels"][:4] == [0, 0, 1, 1]
    view = torch.from_numpy(augmented_views(dataset[0]["image"], 16, "none")[0]).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = tokenizer.encode(view).indices.flatten().tolist()
    assert tokens[0]["input_ids"] == expected


def test_cli_tokenize_train_resume_generate(tokenizer_dir, image_dataset, tmp_path):
    tokens_dir, gpt_dir, images_dir = tmp_path / "tokens", tmp_path / "gpt", tmp_path / "images"
    assert main(["tokenize", "--tokenizer", str(tokenizer_dir), "--dataset", str(image_dataset),
                 "--output-dir", str(tokens_dir), "--augment", "flip"]) == 0
    train = ["train-ar", "--tokens", str(tokens_dir), "--tokenizer", str(tokenizer_dir), "--output-dir", str(gpt_dir),
             "--hidden-size", "32", "--num-layers", "1", "--num-heads", "2", "--batch-size", "4",
             "--learning-rate", "1e-3", "--checkpoint-every", "3"]
    assert main([*train, "--max-steps", "3"]) == 0
    assert (gpt_dir / "checkpoints" / "checkpoint-00000003").is_dir()
    assert main([*train, "--max-steps", "5", "--resume"]) == 0
    gpt = hf_vq.LlamaGenGPTModel.from_pretrained(gpt_dir)
    assert gpt.config.vocab_size == 64 and gpt.config.num_classes == 3 and gpt.config.block_size == 16
    assert main(["generate", "--transformer", str(gpt_dir), "--tokenizer", str(tokenizer_dir),
                 "--output-dir", str(images_dir), "--class-labels", "0", "2", "--num-images-per-label", "2"]) == 0
    assert len(list(images_dir.glob("*_class*.png"))) == 4
    assert Image.open(images_dir / "grid.png").size == (32, 32)


def test_cli_convert_llamagen_gpt(tmp_path, capsys):
    # The tiny official fixture has 64 hidden units, no preset: check the error path and the preset plumbing.
    checkpoint = tmp_path / "c2i_tiny.pt"
    torch.save(torch.load(FIXTURE, weights_only=True)["mha"]["checkpoint"], checkpoint)
    # A user error: one line and exit status 2 (issue 15), the traceback only with --debug.
    args = ["convert", "llamagen-gpt", str(checkpoint), str(tmp_path / "out"), "--preset", "GPT-B", "--block-size", "16"]
    assert main(args) == 2
    assert "hf-vq: error:" in capsys.readouterr().err
    with pytest.raises(ValueError, match="preset GPT-B"):
        main([*args, "--debug"])


def test_readme_walkthrough_demo_tokenizer_to_tokens_to_tiny_gpt_to_a_grid(tmp_path):
    """The README's AR walkthrough, shrunk: hf-vq train -> tokenize --dataset embedded -> train-ar
    configs/ar/tiny.yaml -> generate."""
    from accelerate.state import AcceleratorState

    tokenizer, tokens, gpt, samples = (tmp_path / name for name in ("vqvae", "tokens", "gpt", "samples"))
    assert main(["train", "--output_dir", str(tokenizer), "--training.max_steps", "3", "--model.hidden_dim", "16",
                 "--data.max_eval_images", "8", "--training.report_to", "none"]) == 0
    assert main(["tokenize", "--tokenizer", str(tokenizer), "--dataset", "embedded", "--output-dir", str(tokens)]) == 0
    rows = load_from_disk(tokens)
    assert len(rows) == 2048 and set(rows["class_labels"]) == set(range(11))  # one class per embedded photograph
    AcceleratorState._reset_state(reset_partial_state=True)
    assert main(["train-ar", "configs/ar/tiny.yaml", "--data.tokens", str(tokens), "--data.tokenizer", str(tokenizer),
                 "--output_dir", str(gpt), "--training.max_steps", "4", "--model.hidden_size", "32",
                 "--model.num_hidden_layers", "1", "--training.report_to", "none"]) == 0
    assert (gpt / "train_history.json").is_file() and (gpt / "metrics.json").is_file()
    model = hf_vq.LlamaGenGPTModel.from_pretrained(gpt)
    assert model.config.num_classes == 11 and model.config.vocab_size == 256 and model.config.block_size == 64
    assert main(["generate", "--transformer", str(gpt), "--tokenizer", str(tokenizer), "--output-dir", str(samples),
                 "--class-labels", "0", "5", "--num-images-per-label", "2"]) == 0
    grid = np.asarray(Image.open(samples / "grid.png"))
    assert grid.shape == (64, 64, 3) and grid.std() > 1  # 2 x 2 images of 32 px, not a constant image
