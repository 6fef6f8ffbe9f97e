"""Run the bad inputs and faults of docs/robustness.md and print what a user sees for each.

    PYTHONPATH=src python docs/robustness_cases.py > /tmp/cases.md

Each case prints one table row: the case, then the exception type and the first line of
its message (or what happened when nothing was raised). Nothing here downloads anything.
"""

import json
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import hf_vq  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="hf_vq_robustness_"))
ROWS = []


def outcome(function):
    try:
        result = function()
    except SystemExit as error:
        return f"exit {error.code}"
    except Exception as error:  # what the user would see: the type and the first line
        first = (str(error).strip().splitlines() or [""])[0]
        frames = len(traceback.extract_tb(error.__traceback__))
        return f"{type(error).__name__}: {first[:220]} [{frames} frames]"
    if hasattr(result, "to_dict"):  # a config object: the value was accepted
        return "no error: the config was accepted"
    return f"no error: {' '.join(str(result).split())[:220]}"


def case(area, name):
    def register(function):
        ROWS.append((area, name, outcome(function)))
        print(f"| {area} | {name} | {ROWS[-1][2].replace('|', '/')} |", flush=True)
        return function

    return register


def cli(*args, timeout=600):
    done = subprocess.run([sys.executable, "-m", "hf_vq.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=WORK)
    lines = [line for line in done.stderr.strip().splitlines() if line.strip() and "it/s]" not in line]
    tail = lines[-1] if lines else done.stdout.strip().splitlines()[-1:]
    return f"exit {done.returncode}; stderr lines {len(lines)}; last: {str(tail)[:220]}"


def tiny_vqvae(**overrides):
    torch.manual_seed(0)
    return hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16, **overrides)).eval()


def saved(model, name):
    path = WORK / name
    model.save_pretrained(path)
    return path


def images_folder(name, count=4, corrupt=0):
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    for index in range(corrupt):
        (folder / f"broken{index}.png").write_bytes(b"not an image")
    return folder


print("| Area | Case | What the user sees |\n|---|---|---|")

# -- API --------------------------------------------------------------------------------------------
x = torch.rand(2, 3, 16, 16) * 2 - 1
case("API", "NaN pixel in encode")(lambda: tiny_vqvae().encode(torch.where(torch.arange(16) == 3, float("nan"), x)).indices.shape)
case("API", "inf pixel in forward")(lambda: tiny_vqvae()(x.clone().index_fill_(3, torch.tensor([0]), float("inf"))).loss)
case("API", "pixels outside [-1, 1] (0-255 floats)")(lambda: tiny_vqvae().encode(x * 127.5 + 127.5))
case("API", "empty batch")(lambda: tiny_vqvae().encode(x[:0]).indices.shape)
case("API", "fp16 input to an fp32 model")(lambda: tiny_vqvae().encode(x.half()).indices.shape)
case("API", "bf16 input to an fp32 model")(lambda: tiny_vqvae().encode(x.bfloat16()).indices.shape)
case("API", "uint8 input")(lambda: tiny_vqvae().encode((x * 127 + 128).to(torch.uint8)))
case("API", "channel-last input")(lambda: tiny_vqvae().encode(x.permute(0, 2, 3, 1)))
case("API", "H, W not divisible by the downsampling factor")(lambda: tiny_vqvae().encode(x[..., :15, :15]))
case("API", "decode() with the wrong latent channels")(lambda: tiny_vqvae().decode(torch.randn(2, 5, 4, 4)).sample.shape)
case("API", "decode_indices() with an index >= codebook_size")(lambda: tiny_vqvae().decode_indices(torch.full((1, 4, 4), 32)))
case("API", "decode_indices() with float indices")(lambda: tiny_vqvae().decode_indices(torch.zeros(1, 4, 4)))
case("config", "codebook_size 0")(lambda: hf_vq.VQVAEConfig(codebook_size=0))
case("config", "codebook_size -5")(lambda: hf_vq.VQVAEModel(hf_vq.VQVAEConfig(codebook_size=-5)))
case("config", "ema_decay 1.5")(lambda: hf_vq.VQVAEConfig(use_ema=True, ema_decay=1.5))
case("config", "commitment_beta -1")(lambda: hf_vq.VQVAEConfig(commitment_beta=-1.0))
case("config", "image_size not divisible (VQ-VAE 30)")(lambda: hf_vq.VQVAEConfig(image_size=30))
case("config", "FSQ levels [1]")(lambda: hf_vq.FSQVAEConfig(levels=[1]))


def gpt():
    config = hf_vq.LlamaGenGPTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=16, block_size=4,
                                     num_classes=2)
    return hf_vq.LlamaGenGPTModel(config).eval()


case("API", "GPT input_ids >= vocab_size")(lambda: gpt()(torch.full((1, 3), 16), torch.tensor([0])).logits.shape)
case("API", "GPT class label >= num_classes")(lambda: gpt()(torch.zeros(1, 3, dtype=torch.long), torch.tensor([5])).logits.shape)


def load_with_weights(name, content):
    path = saved(tiny_vqvae(), name)
    (path / "model.safetensors").write_bytes(content(path / "model.safetensors"))
    return hf_vq.VQVAEModel.from_pretrained(path)


case("API", "truncated model.safetensors")(lambda: load_with_weights("truncated", lambda p: p.read_bytes()[: len(p.read_bytes()) // 2]))
case("API", "random bytes as model.safetensors")(lambda: load_with_weights("random_bytes", lambda p: os.urandom(4096)))


def edited_config(name, **changes):
    path = saved(tiny_vqvae(), name)
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))
    model = hf_vq.VQVAEModel.from_pretrained(path)
    return f"loaded; output changed: {not torch.allclose(model(x).reconstruction, tiny_vqvae()(x).reconstruction)}"


case("API", "num_res_blocks edited in config.json")(lambda: edited_config("res_blocks", num_res_blocks=3))
case("API", "l2_norm flipped in config.json")(lambda: edited_config("l2_flipped", l2_norm=True))

# -- converters ------------------------------------------------------------------------------------
from hf_vq.convert import convert_llamagen_checkpoint, convert_taming_checkpoint  # noqa: E402


def converter_input(name, content):
    path = WORK / name
    path.write_bytes(content)
    return path


for label, content in (("random bytes", os.urandom(2048)), ("an empty file", b""), ("a text file", b"hello\n" * 20)):
    case("converters", f"taming given {label}")(lambda content=content: convert_taming_checkpoint(converter_input("c.ckpt", content)))
    case("converters", f"llamagen given {label}")(lambda content=content: convert_llamagen_checkpoint(converter_input("c.pt", content)))


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {WORK / 'PWNED'}",))


def malicious_converter():
    path = WORK / "malicious.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {"x": Payload()}}, handle, protocol=2)
    try:
        convert_taming_checkpoint(path)
    finally:
        assert not (WORK / "PWNED").exists(), "the pickled command ran"


case("converters", "checkpoint whose pickle runs a command")(malicious_converter)
case("converters", "missing checkpoint file (CLI)")(lambda: cli("convert", "taming", WORK / "nope.ckpt", WORK / "out"))

# -- evaluator -------------------------------------------------------------------------------------
model_dir = saved(tiny_vqvae(), "model")
gpt_dir = saved(gpt(), "gpt")
good = images_folder("images")
corrupt = images_folder("images_corrupt", corrupt=1)
case("evaluator", "evaluate a missing model dir (CLI)")(lambda: cli("evaluate", WORK / "missing_model"))
case("evaluator", "evaluate a GPT dir (CLI)")(lambda: cli("evaluate", gpt_dir))
case("evaluator", "evaluate --data missing relative folder (CLI)")(lambda: cli("evaluate", model_dir, "--data", "my_images"))
case("evaluator", "evaluate --data ./missing (CLI)")(lambda: cli("evaluate", model_dir, "--data", "./missing"))
case("evaluator", "evaluate a folder with one corrupt image (CLI)")(
    lambda: cli("evaluate", model_dir, "--data", corrupt, "--metrics", "usage", "psnr", "--output", WORK / "m.json")
    + f"; unreadable_images_skipped={json.loads((WORK / 'm.json').read_text())['unreadable_images_skipped']}"
)
case("evaluator", "evaluate --max-images 0 (CLI)")(lambda: cli("evaluate", model_dir, "--max-images", "0"))
case("evaluator", "evaluate --fid-protocol torch-fidelity, no weights (CLI)")(
    lambda: cli("evaluate", model_dir, "--data", good, "--metrics", "rfid", "--fid-protocol", "torch-fidelity",
                "--output", WORK / "m2.json")
)


def stale_reference():
    from hf_vq.evaluation import evaluate_model_dir

    class Features(torch.nn.Module):
        description = "robustness stand-in features"

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, images):
            return self.conv(images).mean((2, 3))

    os.environ["HF_VQ_CACHE"] = str(WORK / "cache")
    folder = images_folder("stale/images")
    kwargs = dict(metrics=("rfid",), progress=False, fid_feature_extractor=Features())
    first = evaluate_model_dir(model_dir, data=str(folder), **kwargs)
    rng = np.random.default_rng(1)
    for index in range(4):  # same names and count, other pixels
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{index}.png")
        os.utime(folder / f"{index}.png", ns=(0, 10**9 * (index + 1)))
    second = evaluate_model_dir(model_dir, data=str(folder), **kwargs)
    fresh = evaluate_model_dir(model_dir, data=str(folder), fid_reference=WORK / "fresh.npz", **kwargs)
    return (f"changed images: rFID {second['rfid']:.4f} (fresh statistics: {fresh['rfid']:.4f}; before the change "
            f"{first['rfid']:.4f}); new cache file: {first['rfid_reference']['path'] != second['rfid_reference']['path']}")


case("evaluator", "changed images, same count: reference cache")(stale_reference)

# -- CLI -------------------------------------------------------------------------------------------
case("CLI", "push without network")(lambda: cli("push", model_dir, "someone/tiny", timeout=120))
case("CLI", "train --training.learning_rate 1e-3 --training.max_steps abc")(
    lambda: cli("train", "--training.max_steps", "abc", "--output_dir", WORK / "run_abc")
)
case("CLI", "train --training.max_steps 0")(lambda: cli("train", "--training.max_steps", "0", "--output_dir", WORK / "run0"))


def yaml_learning_rate():
    from hf_vq.training.config import load_config

    path = WORK / "lr.yaml"
    path.write_text("model: {model_type: vqvae}\ntraining: {learning_rate: 1e-4}\n")
    value = load_config(path).training.learning_rate
    return f"learning_rate is {type(value).__name__} {value!r}"


case("config", "YAML learning_rate: 1e-4")(yaml_learning_rate)

if __name__ == "__main__":
    import shutil

    shutil.rmtree(WORK, ignore_errors=True)
    print(f"\n{len(ROWS)} cases run.")
