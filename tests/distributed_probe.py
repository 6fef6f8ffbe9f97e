"""Run by test_trainer_distributed.py under ``accelerate launch --num_processes 2 --cpu``.

Trains a tiny tokenizer, then every rank saves its first training batch and its model
state so the test can compare ranks.
"""

import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from hf_vq.training import TrainConfig, build_dataloaders, run_training


def main() -> None:
    config = TrainConfig.from_dict(json.loads(Path(sys.argv[1]).read_text()))
    result = run_training(config)
    accelerator = Accelerator()  # the launched processes' shared state
    batches, _ = build_dataloaders(config, accelerator)  # the same seeded order the run used
    first_batch = next(iter(batches))["pixel_values"]
    state = {name: tensor.detach().cpu() for name, tensor in result.model.state_dict().items()}
    torch.save({"world_size": accelerator.num_processes, "first_batch": first_batch.cpu(), "state": state,
                "history": result.history,
                "metrics": result.metrics}, Path(sys.argv[2]) / f"rank{accelerator.process_index}.pt")


if __name__ == "__main__":
    main()
