"""The tokenizer playground as a Gradio Blocks page: ``hf-vq demo`` and the Space in ``examples/space``.

Tabs: Reconstruct (one column per loaded tokenizer: reconstruction, metrics, the clickable token
map, "replace token"), Codebook (usage histogram, perplexity, most / least used codes), Generate
(when a GPT is given) and Compare runs (``hf-vq benchmark`` rendered). The computing is in
:mod:`hf_vq.demo.playground`; this module only lays it out. A user mistake becomes a ``gr.Error``
shown in the page (never a traceback in the terminal).
"""

import functools
import os
import tempfile

# Nothing may phone home: no analytics, no version check (the page must work offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402  (after the environment above: gradio reads it on import)
import numpy as np  # noqa: E402

from ..utils.errors import UsageError  # noqa: E402
from ..utils.images import to_uint8  # noqa: E402
from . import playground  # noqa: E402

# The default theme's fonts are served by gradio itself (LocalFont); themes built on GoogleFont would make the
# browser reach fonts.googleapis.com (tests/test_demo_browser.py checks the page requests nothing outside).
THEME = gr.themes.Default()
# Tokenizer images are small (32 px for the demo model): show them enlarged, pixels kept sharp.
CSS = ".pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"
MAX_UPLOAD_SIZE = "50mb"
NUM_CODE_PATCHES = 8


def shows_user_errors(function):
    """Run a page callback; a user mistake (``UsageError``, ``ValueError``, missing file) becomes a ``gr.Error``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except (UsageError, ValueError, FileNotFoundError, NotADirectoryError) as error:
            raise gr.Error(str(error), print_exception=False) from error

    return wrapper


def as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def metrics_markdown(metrics: dict, seconds: float | None = None, lpips_available: bool = True) -> str:
    parts = [f"**PSNR** {metrics['psnr']:.2f} dB", f"**SSIM** {metrics['ssim']:.4f}"]
    if "lpips" in metrics:
        parts.append(f"**LPIPS** {metrics['lpips']:.4f}")
    elif not lpips_available:
        parts.append("LPIPS: no AlexNet weights in the torch hub cache")
    parts.append(f"**tokens** {metrics['tokens']}")
    parts.append(f"**bits** {metrics['bits']:.0f}")
    if seconds is not None:
        parts.append(f"encode + decode {seconds * 1000:.0f} ms")
    return " · ".join(parts)


def build_demo(tokenizers, gpt=None, gpt_tokenizer=None, lpips_network=None, run_dirs=()) -> gr.Blocks:
    """The page for ``tokenizers`` (a list of :class:`~hf_vq.demo.playground.LoadedTokenizer`).

    ``gpt`` adds the Generate tab (sampling over ``gpt_tokenizer``); ``run_dirs`` pre-fill Compare runs.
    Start it with ``demo.launch(theme=THEME, css=CSS)`` (:func:`launch` does).
    """
    if not tokenizers:
        raise UsageError("The playground needs at least one tokenizer.")
    names = [tokenizer.name for tokenizer in tokenizers]
    plots_dir = tempfile.mkdtemp(prefix="hf_vq_demo_")

    with gr.Blocks(title="hf_vq tokenizer playground", analytics_enabled=False) as demo:
        gr.Markdown("# hf_vq tokenizer playground\nSee what each tokenizer keeps of an image, token by token. "
                    f"Loaded: {', '.join(f'`{name}`' for name in names)}.")
        source_image = gr.State(None)

        with gr.Tab("Reconstruct"):
            with gr.Row():
                with gr.Column(scale=1):
                    upload = gr.File(label="Upload an image", file_types=["image"], type="filepath",
                                     elem_id="upload")
                    example = gr.Dropdown(list(playground.EXAMPLE_IMAGES), value=None, label="or pick an example",
                                          elem_id="example")
                    reconstruct_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct")
                with gr.Column(scale=2):
                    preview = gr.Image(label="Input", interactive=False, format="png", height=256,
                                       elem_id="input-preview")
            columns = []
            with gr.Row():
                for number, tokenizer in enumerate(tokenizers):
                    with gr.Column():
                        gr.Markdown(f"### {tokenizer.name}\n{type(tokenizer.model).__name__}, "
                                    f"{tokenizer.codebook_size} codes, {tokenizer.image_size} px")
                        indices_state = gr.State(None)
                        original_state = gr.State(None)
                        with gr.Row():
                            model_input = gr.Image(label="Model input (center crop)", interactive=False,
                                                   format="png", height=200, elem_id=f"model-input-{number}",
                                                   elem_classes="pixelated")
                            image = gr.Image(label="Reconstruction", interactive=False, format="png", height=200,
                                             elem_id=f"reconstruction-{number}", elem_classes="pixelated")
                        metrics = gr.Markdown(elem_id=f"metrics-{number}")
                        tokens = gr.Image(label="Tokens (click a cell)", interactive=False, format="png",
                                          height=256, elem_id=f"tokens-{number}")
                        token_info = gr.Markdown(elem_id=f"token-info-{number}")
                        with gr.Row():
                            row = gr.Number(0, label="row", precision=0, minimum=0, elem_id=f"row-{number}")
                            column = gr.Number(0, label="column", precision=0, minimum=0, elem_id=f"column-{number}")
                            code = gr.Number(0, label="new code", precision=0, minimum=0,
                                             maximum=tokenizer.codebook_size - 1, elem_id=f"code-{number}")
                        replace_button = gr.Button("Replace token", elem_id=f"replace-{number}")
                    columns.append((tokenizer, indices_state, original_state, model_input, image, metrics, tokens,
                                    token_info, row, column, code, replace_button))

        with gr.Tab("Codebook"):
            with gr.Row():
                codebook_model = gr.Dropdown(names, value=names[0], label="tokenizer")
                tiles_per_side = gr.Slider(1, 8, value=4, step=1, label="tiles per side (each image is cut into n x n)")
            folder = gr.File(label="optional: a folder of images (default: the example photographs)",
                             file_count="directory", type="filepath")
            codebook_button = gr.Button("Count codes", variant="primary", elem_id="count-codes")
            codebook_summary = gr.Markdown(elem_id="codebook-summary")
            histogram = gr.Image(label="Usage histogram", interactive=False, format="png")
            with gr.Row():
                most_used = gr.Gallery(label="Most used codes", columns=NUM_CODE_PATCHES, height=160,
                                       elem_classes="pixelated")
                least_used = gr.Gallery(label="Least used codes (used at least once)", columns=NUM_CODE_PATCHES,
                                        height=160, elem_classes="pixelated")

        if gpt is not None:
            with gr.Tab("Generate"):
                gr.Markdown(f"A LlamaGen GPT sampling `{gpt_tokenizer.name}` tokens "
                            f"({gpt.config.num_classes} classes).")
                with gr.Row():
                    class_label = gr.Number(0, label="class", precision=0, minimum=0,
                                            maximum=gpt.config.num_classes - 1, elem_id="class-label")
                    guidance = gr.Slider(1.0, 10.0, value=2.0, step=0.25, label="guidance scale")
                    num_images = gr.Slider(1, 16, value=4, step=1, label="images", elem_id="num-images")
                with gr.Row():
                    top_k = gr.Number(0, label="top-k (0: all)", precision=0, minimum=0)
                    top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.01, label="top-p")
                    temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="temperature")
                    seed = gr.Number(0, label="seed", precision=0)
                generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
                gallery = gr.Gallery(label="Samples", columns=4, height=300, format="png", elem_id="samples",
                                     elem_classes="pixelated")

        with gr.Tab("Compare runs"):
            runs_text = gr.Textbox("\n".join(map(str, run_dirs)), lines=4, label="run folders, one per line "
                                   "(written by `hf-vq train` / `hf-vq evaluate`)")
            compare_button = gr.Button("Compare", variant="primary")
            runs_table = gr.Markdown()
            runs_plot = gr.Image(label="Codebook usage", interactive=False, format="png")

        # -- callbacks ---------------------------------------------------------------------------------
        @shows_user_errors
        def on_upload(path):
            if path is None:
                return None, None
            image = playground.open_image(path)
            return image, image

        @shows_user_errors
        def on_example(name):
            if not name:
                return gr.skip(), gr.skip()
            image = playground.example_image(name)
            return image, image

        upload.upload(on_upload, upload, [source_image, preview])
        example.change(on_example, example, [source_image, preview])

        outputs = [component for column_items in columns for component in column_items[1:8]]

        @shows_user_errors
        def on_reconstruct(image):
            if image is None:
                raise UsageError("Upload an image or pick an example first.")
            results = []
            for tokenizer, *_ in columns:
                result = playground.reconstruct(tokenizer, image, lpips_network)
                results += [result.indices, result.original, as_rgb(result.original_image), as_rgb(result.image),
                            metrics_markdown(result.metrics, result.seconds, lpips_network is not None),
                            playground.token_map(result.indices),
                            f"{tuple(result.indices.shape)} tokens; click a cell to see its code."]
            return results

        reconstruct_button.click(on_reconstruct, source_image, outputs)

        for tokenizer, indices_state, original_state, _, image, metrics, tokens, token_info, row, column, code, \
                replace_button in columns:

            @shows_user_errors
            def on_select(indices, event: gr.SelectData):
                if indices is None:
                    return gr.skip(), gr.skip(), gr.skip(), gr.skip()
                x, y = event.index
                token_row, token_column, token_code = playground.token_at_pixel(indices, x, y)
                where = f"position {token_column}" if indices.ndim == 1 else f"row {token_row}, column {token_column}"
                return f"Token at {where}: **code {token_code}**", token_row, token_column, token_code

            tokens.select(on_select, indices_state, [token_info, row, column, code])

            @shows_user_errors
            def on_replace(indices, original, token_row, token_column, new_code, tokenizer=tokenizer):
                if indices is None:
                    raise UsageError("Reconstruct an image first, then replace one of its tokens.")
                edited, sample = playground.replace_token(tokenizer, indices, int(token_row or 0),
                                                          int(token_column or 0), int(new_code or 0))
                metrics_text = metrics_markdown(
                    {**playground.image_metrics(sample, original, lpips_network),
                     **playground.token_count_and_bits(tokenizer, edited)},
                    lpips_available=lpips_network is not None,
                )
                return (edited, as_rgb(to_uint8(sample)[0]), f"After the replacement: {metrics_text}",
                        playground.token_map(edited))

            replace_button.click(on_replace, [indices_state, original_state, row, column, code],
                                 [indices_state, image, metrics, tokens])

        @shows_user_errors
        def on_count_codes(name, per_side, paths, progress=gr.Progress()):  # noqa: B008 (how gradio asks for a progress bar)
            tokenizer = tokenizers[names.index(name)]
            if paths:
                images = playground.folder_images(paths)
                what = f"{len(images)} uploaded images"
            else:
                images = [playground.example_image(example_name) for example_name in playground.EXAMPLE_IMAGES]
                what = f"the {len(images)} example photographs"
            statistics = playground.codebook_statistics(
                tokenizer, images, int(per_side), progress=lambda steps: progress.tqdm(steps, desc="Encoding tiles"))
            summary = (f"Over {what} ({statistics.num_images} tiles of {tokenizer.image_size} px, "
                       f"{int(statistics.counts.sum())} tokens): **usage {100 * statistics.usage:.1f}%** "
                       f"({int((statistics.counts > 0).sum())} of {tokenizer.codebook_size} codes), "
                       f"**perplexity {statistics.perplexity:.1f}**.")
            most, least = statistics.most_used(NUM_CODE_PATCHES), statistics.least_used(NUM_CODE_PATCHES)

            def patches(ranked):
                images = playground.code_patches(tokenizer, [c for c, _ in ranked], statistics.token_shape)
                return [(as_rgb(patch), f"#{c} ×{n}") for patch, (c, n) in zip(images, ranked)]

            title = f"{name}: {statistics.num_images} tiles"
            return summary, playground.usage_histogram(statistics, title), patches(most), patches(least)

        codebook_button.click(on_count_codes, [codebook_model, tiles_per_side, folder],
                              [codebook_summary, histogram, most_used, least_used])

        if gpt is not None:

            @shows_user_errors
            def on_generate(label, scale, count, k, p, temp, seed_value, progress=gr.Progress()):  # noqa: B008 (how gradio asks for a progress bar)
                images = playground.generate(
                    gpt, gpt_tokenizer, int(label or 0), int(count), guidance_scale=float(scale), top_k=int(k or 0),
                    top_p=float(p), temperature=float(temp), seed=int(seed_value or 0),
                    progress_bar=lambda steps: progress.tqdm(steps, desc="Sampling tokens"),
                )
                return [(as_rgb(image), f"class {int(label or 0)}") for image in images]

            generate_button.click(on_generate, [class_label, guidance, num_images, top_k, top_p, temperature, seed],
                                  gallery)

        @shows_user_errors
        def on_compare(text):
            plot_path = os.path.join(tempfile.mkdtemp(dir=plots_dir), "usage.png")
            table, plot = playground.compare_runs(text.splitlines(), plot_path)
            return table, plot

        compare_button.click(on_compare, runs_text, [runs_table, runs_plot])
    return demo


def launch(demo: gr.Blocks, port: int | None = None, share: bool = False, host: str | None = None, **kwargs):
    """``demo.launch`` with the offline theme, the upload limit and errors shown in the page."""
    return demo.launch(server_name=host, server_port=port, share=share, theme=THEME, css=CSS, show_error=True,
                       max_file_size=MAX_UPLOAD_SIZE, footer_links=["gradio"], **kwargs)





def build_demo_from_sources(sources=(), gpt_source=None, device: str = "cpu", lpips_weights=None) -> gr.Blocks:
    """Load tokenizers (folders or Hub ids; none: ``outputs/demo-vqvae``), the GPT and LPIPS, and build the page."""
    sources = list(sources) or [playground.DEFAULT_MODEL_DIR]
    tokenizers = [playground.load_tokenizer(source, device=device) for source in sources]
    taken = {}
    for tokenizer in tokenizers:  # two folders with the same last name get numbered columns
        count = taken[tokenizer.name] = taken.get(tokenizer.name, 0) + 1
        if count > 1:
            tokenizer.name = f"{tokenizer.name} ({count})"
    gpt, gpt_tokenizer = playground.load_gpt(gpt_source, tokenizers, device) if gpt_source else (None, None)
    run_dirs = [source for source in sources if any(os.path.isfile(os.path.join(source, name))
                                                    for name in ("metrics.json", "eval_metrics.json"))]
    return build_demo(tokenizers, gpt, gpt_tokenizer, playground.try_load_lpips(lpips_weights), run_dirs)
__all__ = ["CSS", "THEME", "build_demo", "build_demo_from_sources", "launch", "shows_user_errors"]
