"""Crash-safe checkpoints: ``output_dir/checkpoints/checkpoint-<step>`` plus a ``latest`` pointer.

A checkpoint is written into ``.tmp-checkpoint-<step>`` (every process writes its part: the
main process the weights, optimizers and ``trainer_state.json``, each process its RNG state),
renamed to ``checkpoint-<step>`` in one atomic ``os.replace``, and only then is the ``latest``
file replaced (written to a temp file, then ``os.replace``). A crash at any moment leaves
either the previous complete checkpoint or the new one as ``latest``, never a half-written
one. Leftover temp directories are removed at start; only the last ``keep`` are kept.
Multi-node runs need ``output_dir`` on a filesystem shared by all nodes.

What goes into a checkpoint is decided by the engine (:mod:`hf_vq.training.engine`); the files
are safetensors and JSON only (:mod:`hf_vq.training.state`).
"""

import os
import re
import shutil
from pathlib import Path

from .state import CheckpointFormatError

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
LATEST_FILE = "latest"
TRAINER_STATE_FILE = "trainer_state.json"


class CheckpointManager:
    def __init__(self, accelerator, output_dir, keep: int = 2):
        self.accelerator = accelerator
        self.directory = Path(output_dir) / "checkpoints"
        self.keep = keep

    def remove_incomplete(self) -> None:
        """Delete temp directories left by a crash during a save."""
        if self.accelerator.is_main_process and self.directory.is_dir():
            for path in self.directory.glob(".tmp-checkpoint-*"):
                shutil.rmtree(path, ignore_errors=True)
        self.accelerator.wait_for_everyone()

    def complete_checkpoints(self) -> list:
        """Complete checkpoint directories, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
        return [path for _, path in sorted(found)]

    def save(self, step: int, write) -> Path:
        """Call ``write(directory)`` on every process into a temp directory, then publish it atomically."""
        name = f"checkpoint-{step:08d}"
        temp = self.directory / f".tmp-{name}"
        final = self.directory / name
        if self.accelerator.is_main_process:
            shutil.rmtree(temp, ignore_errors=True)
            temp.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        write(temp)
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            if final.exists():  # a previous run reached this step and died before moving `latest` past it
                shutil.rmtree(final)
            os.replace(temp, final)
            pointer = self.directory / f".{LATEST_FILE}.tmp"
            pointer.write_text(name)
            os.replace(pointer, self.directory / LATEST_FILE)
            for old in self.complete_checkpoints()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return final

    def resolve(self, resume_from: str) -> Path | None:
        """``"latest"`` -> the directory the pointer names (None when the run has no checkpoint yet);
        any other value -> that directory, which must exist."""
        if resume_from == "latest":
            pointer = self.directory / LATEST_FILE
            if not pointer.is_file():
                return None
            try:
                name = pointer.read_bytes().decode("ascii").strip()
            except UnicodeDecodeError:
                name = ""
            if not CHECKPOINT_PATTERN.match(name):
                raise CheckpointFormatError(
                    f"{pointer} should name a checkpoint-<step> directory but holds something else. Resume from a "
                    f"checkpoint directory with --training.resume_from {self.directory}/checkpoint-<step>."
                )
            path = self.directory / name
            if not path.is_dir():
                raise FileNotFoundError(
                    f"{pointer} names {path.name}, which does not exist. Resume from an existing checkpoint with "
                    f"--training.resume_from {self.directory}/checkpoint-<step>."
                )
            return path
        path = Path(resume_from)
        if not (path / TRAINER_STATE_FILE).is_file():
            raise FileNotFoundError(
                f"{path} is not a complete hf_vq checkpoint (no {TRAINER_STATE_FILE}). Use `latest` or a "
                f"checkpoint-<step> directory under {self.directory}."
            )
        return path
