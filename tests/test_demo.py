"""The playground's functions (hf_vq.demo.playground) against independent computations, and its error messages.

The page itself is driven in a real browser by tests/test_demo_browser.py.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from demo_models import CODEBOOK_SIZE, IMAGE_SIZE, NUM_CLASSES, save_tiny_models
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hf_vq.demo import playground
from hf_vq.quantizers import CodebookUsage
from hf_vq.utils.errors import UsageError
from hf_vq.utils.images import to_uint8


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("demo_models"))


@pytest.fixture(scope="module")
def tokenizer(model_dirs):
    return playground.load_tokenizer(str(model_dirs[0]))


@pytest.fixture(scope="module")
def photo():
    return playground.example_image("chelsea")


def unit(images: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) in [-1, 1] -> (H, W, C) floats in [0, 1], as the metrics protocol."""
    return ((images[0].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).double().numpy()


def test_reconstruction_and_metrics_match_encode_decode_and_scikit_image(tokenizer, photo):
    result = playground.reconstruct(tokenizer, photo)
    model, processor = tokenizer.model, tokenizer.processor
    pixel_values = processor(photo).pixel_values
    with torch.no_grad():
        encoded = model.encode(pixel_values)
        expected = model.decode(encoded.quantized).sample
    assert torch.equal(result.indices, encoded.indices[0])
    assert result.image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    np.testing.assert_allclose(result.reconstruction.numpy(), expected.clamp(-1, 1).numpy(), atol=1e-5)
    original, reconstruction = unit(pixel_values), unit(expected)
    assert result.metrics["psnr"] == pytest.approx(peak_signal_noise_ratio(original, reconstruction, data_range=1),
                                                   abs=1e-3)
    assert result.metrics["ssim"] == pytest.approx(
        structural_similarity(original, reconstruction, data_range=1, channel_axis=-1), abs=1e-4)
    assert "lpips" not in result.metrics  # no network given
    # 8 x 8 tokens of a 32-code book: 64 tokens, 5 bits each.
    assert result.metrics["tokens"] == 64 and result.metrics["bits"] == 64 * 5
    assert len(result.indices.unique()) > 4  # the test model uses many codes (demo_models.py)


def test_replace_token_changes_one_index_and_decodes_them(tokenizer, photo):
    indices = playground.reconstruct(tokenizer, photo).indices
    new_code = (int(indices[2, 5]) + 7) % CODEBOOK_SIZE
    edited, sample = playground.replace_token(tokenizer, indices, 2, 5, new_code)
    assert edited[2, 5] == new_code
    assert torch.equal(edited != indices, torch.zeros_like(indices, dtype=torch.bool).index_put_(
        (torch.tensor([2]), torch.tensor([5])), torch.tensor(True)))
    with torch.no_grad():
        expected = tokenizer.model.decode_indices(edited[None]).sample.clamp(-1, 1)
    torch.testing.assert_close(sample, expected)
    before = tokenizer.model.decode_indices(indices[None]).sample.clamp(-1, 1)
    assert (to_uint8(sample) != to_uint8(before)).any()  # visible in the 8-bit picture the page shows
    with pytest.raises(UsageError, match="not in the codebook: choose 0 to 31"):
        playground.replace_token(tokenizer, indices, 0, 0, CODEBOOK_SIZE)
    with pytest.raises(UsageError, match=r"outside the 8x8 grid"):
        playground.replace_token(tokenizer, indices, 8, 0, 1)


def test_token_map_cells_and_clicks_round_trip():
    indices = torch.tensor([[3, 3, 7], [0, 1000, 3]])
    image = playground.token_map(indices)
    cell = playground.token_map_cell_size(indices)
    assert image.shape == (2 * cell, 3 * cell, 3)
    colours = playground.code_colours(indices)
    for row in range(2):
        for column in range(3):
            x, y = column * cell + cell // 2, row * cell + cell // 2
            np.testing.assert_array_equal(image[y, x], colours[row, column])
            assert playground.token_at_pixel(indices, x, y) == (row, column, int(indices[row, column]))
    # Codes next to each other get clearly different colours.
    neighbours = playground.code_colours(torch.arange(256)).astype(int)
    assert (np.abs(np.diff(neighbours, axis=0)).sum(1) > 30).all()
    # 1D tokens (TiTok) are one strip; a click reads the column.
    strip = playground.token_map(torch.arange(32))
    assert strip.shape[0] == playground.token_map_cell_size(torch.arange(32)) and strip.shape[1] >= 256
    assert playground.token_at_pixel(torch.arange(32) * 2, x=5 * strip.shape[1] // 32 + 1, y=2) == (0, 5, 10)


def test_codebook_statistics_count_every_tile_token(tokenizer, photo):
    statistics = playground.codebook_statistics(tokenizer, [photo, photo.rotate(90)], tiles_per_side=2)
    crops = [tile for image in (photo, photo.rotate(90)) for tile in playground.tiles(image, IMAGE_SIZE, 2)]
    with torch.no_grad():
        indices = tokenizer.model.encode(tokenizer.processor(crops).pixel_values).indices
    np.testing.assert_array_equal(statistics.counts.numpy(), np.bincount(indices.flatten().numpy(),
                                                                        minlength=CODEBOOK_SIZE))
    reference = CodebookUsage(CODEBOOK_SIZE)
    reference.update(indices)
    expected = reference.compute()
    assert statistics.usage == pytest.approx(expected["codebook_usage"])
    assert statistics.perplexity == pytest.approx(expected["perplexity"])
    assert statistics.num_images == 8 and statistics.token_shape == (8, 8)
    most, least = statistics.most_used(3), statistics.least_used(3)
    counts = statistics.counts.tolist()
    assert [n for _, n in most] == sorted(counts, reverse=True)[:3]
    assert [n for _, n in least] == sorted(n for n in counts if n)[:3]
    patches = playground.code_patches(tokenizer, [most[0][0]], statistics.token_shape)
    with torch.no_grad():
        filled = tokenizer.model.decode_indices(torch.full((1, 8, 8), most[0][0])).sample
    np.testing.assert_array_equal(patches[0], to_uint8(filled)[0])
    assert playground.usage_histogram(statistics, "t").shape[-1] == 3
    with pytest.raises(UsageError, match="No images"):
        playground.codebook_statistics(tokenizer, [])


def test_generate_is_the_library_sampler_with_the_seed(model_dirs, tokenizer):
    from hf_vq.generation import generate_images

    gpt, gpt_tokenizer = playground.load_gpt(str(model_dirs[1]), [tokenizer])
    images = playground.generate(gpt, gpt_tokenizer, 2, num_images=2, guidance_scale=1.5, top_k=8, seed=3)
    expected = generate_images(gpt, tokenizer.model, [2, 2], guidance_scale=1.5, top_k=8,
                               generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(np.stack(images), to_uint8(expected))
    with pytest.raises(UsageError, match=f"not one of the GPT's {NUM_CLASSES} classes"):
        playground.generate(gpt, gpt_tokenizer, NUM_CLASSES)
    with pytest.raises(UsageError, match="temperature > 0"):
        playground.generate(gpt, gpt_tokenizer, 0, temperature=0)


def test_gpt_over_another_codebook_is_refused(model_dirs, tokenizer):
    import hf_vq

    config = hf_vq.VQVAEConfig(hidden_dim=8, codebook_size=16, codebook_dim=4, image_size=IMAGE_SIZE)
    other = playground.LoadedTokenizer("other", hf_vq.VQVAEModel(config), tokenizer.processor)
    with pytest.raises(UsageError, match="predicts 32 codes, but no loaded tokenizer has that many"):
        playground.load_gpt(str(model_dirs[1]), [other])


def test_user_errors_name_the_problem_and_the_fix(tmp_path, monkeypatch):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    with pytest.raises(UsageError, match="notes.png is not an image Pillow can read: upload a PNG, JPEG"):
        playground.open_image(not_an_image)
    big = tmp_path / "big.png"
    Image.new("RGB", (40, 30)).save(big)
    monkeypatch.setattr(playground, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UsageError, match=r"big.png is 40x30 \(0 megapixels\); .* Downscale it first"):
        playground.open_image(big)
    monkeypatch.setattr(playground, "MAX_IMAGE_PIXELS", 1200)
    assert playground.open_image(big).size == (40, 30)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"No tokenizer in outputs/demo-vqvae: train the demo model first with `hf-vq train`"):
        playground.load_tokenizer("outputs/demo-vqvae")
    with pytest.raises(UsageError, match="not found: give a folder written by save_pretrained"):
        playground.load_tokenizer(str(tmp_path / "nothing-here"))
    # A feature-predicting tokenizer (decodes_pixels False, as VQ-KD) has no picture to show.
    import hf_vq

    feature_model = tmp_path / "features"
    hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=8, codebook_size=8, codebook_dim=4)).save_pretrained(feature_model)
    monkeypatch.setattr(hf_vq.VQVAEModel, "decodes_pixels", False)
    with pytest.raises(UsageError, match="predicts teacher features, not images"):
        playground.load_tokenizer(str(feature_model))
    monkeypatch.undo()
    with pytest.raises(UsageError, match="Unknown example"):
        playground.example_image("nope")
    with pytest.raises(UsageError, match="None of the 1 uploaded files is an image"):
        playground.folder_images([str(tmp_path / "notes.txt")])


def test_compare_runs_renders_the_benchmark_table(tmp_path):
    import json

    run = tmp_path / "run-a"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model_type": "vqvae", "codebook_size": 512, "codebook_dim": 64}))
    (run / "metrics.json").write_text(json.dumps({"codebook_usage": 0.5, "perplexity": 100.0, "psnr": 25.0}))
    table, plot = playground.compare_runs([str(run), "  "], tmp_path / "usage.png")
    assert "run-a" in table and "vqvae" in table and "512" in table
    assert Image.open(plot).size[0] > 100
    with pytest.raises(FileNotFoundError, match="does not exist"):
        playground.compare_runs([str(tmp_path / "missing")], tmp_path / "u.png")
    with pytest.raises(UsageError, match="at least one run folder"):
        playground.compare_runs([""], tmp_path / "u.png")


def test_page_turns_user_errors_into_messages(tokenizer):
    from hf_vq.demo.app import build_demo, shows_user_errors
    from hf_vq.demo.app import gr as gradio  # through the app: it switches gradio's analytics off before the import

    @shows_user_errors
    def fails():
        raise UsageError("Upload an image first.")

    with pytest.raises(gradio.Error, match="Upload an image first."):
        fails()
    demo = build_demo([tokenizer])
    assert isinstance(demo, gradio.Blocks)
    with pytest.raises(UsageError, match="at least one tokenizer"):
        build_demo([])


def test_cli_without_a_model_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    from hf_vq.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 2
    assert "train the demo model first with `hf-vq train`" in capsys.readouterr().err
    from hf_vq.cli import demo as demo_command  # spelled out there so `--help` imports no torch

    assert demo_command.DEFAULT_MODEL_DIR == playground.DEFAULT_MODEL_DIR


def test_space_app_builds_the_page_from_model_ids(model_dirs, monkeypatch):
    import importlib.util

    from hf_vq.demo.app import gr as gradio

    path = Path(__file__).resolve().parents[1] / "examples" / "space" / "app.py"

    def load_space():
        spec = importlib.util.spec_from_file_location("space_app", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    monkeypatch.setenv("HF_VQ_MODELS", f"{model_dirs[0]}, {model_dirs[0]}")
    monkeypatch.setenv("HF_VQ_GPT", str(model_dirs[1]))
    space = load_space()
    assert isinstance(space.demo, gradio.Blocks) and len(space.MODEL_IDS) == 2
    monkeypatch.delenv("HF_VQ_MODELS")
    with pytest.raises(SystemExit, match="Set HF_VQ_MODELS"):
        load_space()
    # A Hub id that cannot be fetched (the tests run offline) is a message, not a traceback.
    with pytest.raises(UsageError, match="'someone/no-such-tokenizer' not found"):
        playground.load_tokenizer("someone/no-such-tokenizer")


def test_lpips_is_shown_when_its_weights_are_there(tokenizer, photo, tmp_path):
    import torchvision

    from hf_vq.demo.app import metrics_markdown

    assert playground.try_load_lpips(tmp_path / "alexnet-owt-7be5be79.pth") is None  # missing: skipped, no error
    torch.manual_seed(2)
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    network = playground.try_load_lpips(path)
    result = playground.reconstruct(tokenizer, photo, network)
    with torch.no_grad():  # lpips' own call on [0, 1] images (normalize=True), as the benchmark
        expected = network(torch.from_numpy(unit(result.reconstruction)).permute(2, 0, 1)[None].float(),
                           torch.from_numpy(unit(result.original)).permute(2, 0, 1)[None].float(), normalize=True)
    assert result.metrics["lpips"] == pytest.approx(float(expected), abs=1e-5)
    assert f"**LPIPS** {result.metrics['lpips']:.4f}" in metrics_markdown(result.metrics)
    assert "LPIPS: no AlexNet weights" in metrics_markdown({k: v for k, v in result.metrics.items() if k != "lpips"},
                                                           lpips_available=False)
