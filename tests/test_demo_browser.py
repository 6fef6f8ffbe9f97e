"""``hf-vq demo`` end to end in a real browser: Debian's Chromium driven by Playwright.

The page is started on a free port with a tiny tokenizer and GPT made here. The browser uploads
a photograph (after a file that is not an image, whose error must show in the page), clicks
Reconstruct, reads the reconstruction back from the page and checks it against
``model.encode`` / ``decode`` computed here, clicks a token cell, replaces that token, and runs
one generation, counts codes on the Codebook tab, and checks that the page requested nothing outside the
machine. Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs
it); Playwright's own browser download is never used.
"""

import io
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from demo_models import CODEBOOK_SIZE, IMAGE_SIZE, save_tiny_models
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                "(apt-get install chromium); .ci/run installs it")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from hf_vq.demo.app import build_demo_from_sources, launch

    folder = tmp_path_factory.mktemp("demo_browser")
    tokenizer_dir, gpt_dir = save_tiny_models(folder)
    demo = build_demo_from_sources([str(tokenizer_dir)], str(gpt_dir))
    port = free_port()
    launch(demo, port=port, host="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", tokenizer_dir, gpt_dir, folder
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        # Every request the page makes, to check it never leaves the machine (fonts, analytics, CDNs).
        page.requested_urls = []
        page.on("request", lambda request: page.requested_urls.append(request.url))
        page.goto(served[0], wait_until="load")
        page.wait_for_selector("#reconstruct")
        yield page
        browser.close()


def image_from_page(page, selector: str) -> np.ndarray:
    """The picture an <img> in the page shows, fetched from its URL and decoded (uint8 H, W, C)."""
    source = page.wait_for_selector(f"{selector} img").get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(source).body())).convert("RGB"))


def unit(images: torch.Tensor) -> np.ndarray:
    return ((images[0].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).double().numpy()


def test_reconstruct_replace_a_token_and_generate_in_the_browser(served, page):
    import hf_vq
    from hf_vq.generation import generate_images
    from hf_vq.utils.images import to_uint8

    _, tokenizer_dir, gpt_dir, folder = served
    model = hf_vq.VQVAEModel.from_pretrained(tokenizer_dir).eval()
    processor = hf_vq.VQImageProcessor.from_pretrained(tokenizer_dir)
    import skimage.data

    photo_path, not_an_image = folder / "cat.png", folder / "notes.png"
    Image.fromarray(skimage.data.chelsea()).save(photo_path)
    not_an_image.write_text("not an image")

    # A wrong file type is a message in the page.
    page.set_input_files("#upload input[type=file]", str(not_an_image))
    page.get_by_text("notes.png is not an image Pillow can read").first.wait_for()
    page.locator("#upload button[aria-label='Clear']").first.click()

    page.set_input_files("#upload input[type=file]", str(photo_path))
    page.wait_for_selector("#input-preview img")
    page.click("#reconstruct")
    page.wait_for_function("document.querySelector('#metrics-0').innerText.includes('PSNR')")
    shown = image_from_page(page, "#reconstruction-0")

    # The same image through the model here.
    pixel_values = processor(Image.open(photo_path).convert("RGB")).pixel_values
    with torch.no_grad():
        encoded = model.encode(pixel_values)
        expected = model.decode(encoded.quantized).sample
    assert shown.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert np.abs(shown.astype(int) - to_uint8(expected)[0].astype(int)).max() <= 1
    metrics = page.inner_text("#metrics-0")
    page_psnr = float(re.search(r"PSNR ([\d.]+) dB", metrics).group(1))
    page_ssim = float(re.search(r"SSIM ([\d.]+)", metrics).group(1))
    assert page_psnr == pytest.approx(peak_signal_noise_ratio(unit(pixel_values), unit(expected), data_range=1), abs=0.01)
    assert page_ssim == pytest.approx(
        structural_similarity(unit(pixel_values), unit(expected), data_range=1, channel_axis=-1), abs=2e-4)
    assert re.search(r"tokens 64\b", metrics) and re.search(r"bits 320\b", metrics)

    # Click the token cell at row 4, column 2 of the 8 x 8 map: the page names its code.
    token_map = page.wait_for_selector("#tokens-0 img")
    box = token_map.bounding_box()
    token_map.click(position={"x": box["width"] * 2.5 / 8, "y": box["height"] * 4.5 / 8})
    page.wait_for_function("document.querySelector('#token-info-0').innerText.includes('Token at')")
    code = int(encoded.indices[0, 4, 2])
    assert f"row 4, column 2: code {code}" in page.inner_text("#token-info-0")

    # Replace it by another code and decode again: the picture changes, as decode_indices says.
    new_code = (code + 7) % CODEBOOK_SIZE
    before_src = page.get_attribute("#reconstruction-0 img", "src")
    page.fill("#code-0 input", str(new_code))
    page.click("#replace-0")
    page.wait_for_function(f"document.querySelector('#reconstruction-0 img').src != {before_src!r}")
    edited_image = image_from_page(page, "#reconstruction-0")
    edited = encoded.indices.clone()
    edited[0, 4, 2] = new_code
    with torch.no_grad():
        expected_edit = to_uint8(model.decode_indices(edited).sample)[0]
    assert (edited_image != shown).any()
    assert np.abs(edited_image.astype(int) - expected_edit.astype(int)).max() <= 1

    # One generation: two samples of class 1, seed 0, the page's default sampling settings.
    page.get_by_role("tab", name="Generate").click()
    page.fill("#class-label input", "1")
    page.fill("#num-images input[type=number]", "2")
    page.locator("#num-images input[type=number]").press("Enter")
    page.click("#generate")
    page.wait_for_function("document.querySelectorAll('#samples img').length == 2")
    samples = [np.asarray(Image.open(io.BytesIO(page.request.get(img.get_attribute("src")).body())).convert("RGB"))
               for img in page.query_selector_all("#samples img")]
    gpt = hf_vq.LlamaGenGPTModel.from_pretrained(gpt_dir).eval()
    reference = to_uint8(generate_images(gpt, model, [1, 1], guidance_scale=2.0,
                                         generator=torch.Generator().manual_seed(0)))
    for sample, expected_sample in zip(samples, reference):
        assert sample.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
        assert np.abs(sample.astype(int) - expected_sample.astype(int)).max() <= 1

    # Codebook tab over the example photographs (4 x 4 tiles each, the default): the page's usage and
    # perplexity are the ones of the codes counted here.
    from hf_vq.demo import playground
    from hf_vq.quantizers import CodebookUsage

    page.get_by_role("tab", name="Codebook").click()
    page.click("#count-codes")
    page.wait_for_function("document.querySelector('#codebook-summary').innerText.includes('perplexity')")
    usage = CodebookUsage(CODEBOOK_SIZE)
    with torch.no_grad():
        for name in playground.EXAMPLE_IMAGES:
            tiles = playground.tiles(playground.example_image(name), IMAGE_SIZE, 4)
            usage.update(model.encode(processor(tiles).pixel_values).indices)
    expected_usage = usage.compute()
    summary = page.inner_text("#codebook-summary")
    assert f"usage {100 * expected_usage['codebook_usage']:.1f}%" in summary
    assert f"perplexity {expected_usage['perplexity']:.1f}" in summary

    local = served[0].rstrip("/")
    outside = [url for url in page.requested_urls if not url.startswith((local, "data:", "blob:"))]
    assert not outside, f"the page requested addresses outside the machine: {outside[:5]}"
