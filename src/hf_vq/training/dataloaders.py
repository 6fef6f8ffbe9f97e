"""Train and eval DataLoaders from the ``data:`` section, sharded across processes.

Map-style datasets (embedded, image folders, Hub datasets) go through Accelerate's
``prepare``: every process gets different batches of one seeded permutation per epoch, and
a resumed run restarts at the exact batch with ``skip_first_batches``. Streaming datasets
are sharded by ``datasets.distributed.split_dataset_by_node`` instead (not re-sharded by
Accelerate); a resumed streaming run re-reads and skips the batches it already used.
"""

import itertools
import logging

import numpy as np
import torch
from datasets.distributed import split_dataset_by_node
from torch.utils.data import DataLoader

from ..data import (
    DecodedImageDataset,
    DecodedImageIterable,
    EpochShuffleSampler,
    EvalTransform,
    TrainTransform,
    collate_images,
    load_image_dataset,
)
from .config import TrainConfig

logger = logging.getLogger(__name__)
STREAMING_SHUFFLE_BUFFER = 10_000


def _source(data) -> str:
    if data.train_data_dir:
        return "imagefolder"
    if data.dataset == "imagefolder":
        raise ValueError("data.dataset `imagefolder` needs data.train_data_dir (a folder of images).")
    return data.dataset


def load_train_and_eval_sets(config: TrainConfig):
    """(train, eval) ``datasets`` datasets with undecoded image columns."""
    data = config.data
    source = _source(data)
    common = {"dataset_config": data.dataset_config, "image_column": data.image_column, "streaming": data.streaming}
    train_set = load_image_dataset(source, data.train_split, data_dir=data.train_data_dir, **common)
    if data.eval_data_dir:
        eval_set = load_image_dataset("imagefolder", "train", data_dir=data.eval_data_dir, **common)
    elif source == "embedded":
        eval_set = load_image_dataset("embedded", "validation")
    else:
        try:
            eval_set = load_image_dataset(source, data.eval_split, data_dir=data.train_data_dir, **common)
        except ValueError as error:
            if "split" not in str(error).lower():
                raise
            if data.streaming:
                raise ValueError(
                    f"The streaming dataset has no split {data.eval_split!r}; set data.eval_split or data.eval_data_dir."
                ) from error
            # No evaluation split: hold out a fixed, seeded part of the training images.
            holdout = min(data.eval_holdout, len(train_set) // 2)
            logger.warning("No split %r: holding out %d training images for evaluation.", data.eval_split, holdout)
            parts = train_set.train_test_split(test_size=holdout, seed=config.seed)
            train_set, eval_set = parts["train"], parts["test"]
    if data.max_eval_images:
        eval_set = eval_set.take(data.max_eval_images) if data.streaming else eval_set.select(
            range(min(data.max_eval_images, len(eval_set))))
    return train_set, eval_set


def _without_global_rng(loader):
    """Iterate ``loader`` without touching the global torch RNG.

    A DataLoader draws a base seed from the global generator when its iterator starts. A
    resumed run starts one mid-epoch where the uninterrupted run did not, so that draw would
    shift every later random number (dropout, class dropout) and the two runs would part.
    """
    iterator = iter(loader)
    with torch.random.fork_rng(devices=[]):
        first = next(iterator, _END)
    if first is _END:
        return
    yield first
    yield from iterator


_END = object()


class TrainBatches:
    """Endless iterator of training batches that knows how to start at any micro-batch.

    The order is a function of (seed, epoch) only, so ``TrainBatches(..., start=n)`` yields
    exactly what an uninterrupted run yields after its first ``n`` batches.
    """

    def __init__(self, accelerator, loader, dataset, sampler, streaming: bool, start: int = 0):
        self.accelerator = accelerator
        self.loader = loader
        self.dataset = dataset
        self.sampler = sampler
        self.streaming = streaming
        self.start = start

    def __iter__(self):
        if self.streaming:
            yield from itertools.islice(self._stream_epochs(), self.start, None)
            return
        per_epoch = len(self.loader)
        if per_epoch == 0:
            raise ValueError("The training set is smaller than one batch per process; lower training.batch_size.")
        epoch, offset = divmod(self.start, per_epoch)
        while True:
            loader = self.accelerator.skip_first_batches(self.loader, offset) if offset else self.loader
            # Accelerate's loaders set the sampler's epoch to their own counter when iterated (and the
            # loader made by skip_first_batches cannot reach our sampler): set the epoch on all of them.
            loader.set_epoch(epoch)
            self.sampler.set_epoch(epoch)
            if hasattr(self.dataset, "set_epoch"):  # image datasets draw new random crops per epoch
                self.dataset.set_epoch(epoch)
            yield from _without_global_rng(loader)
            epoch, offset = epoch + 1, 0

    def _stream_epochs(self):
        epoch = 0
        while True:
            self.dataset.set_epoch(epoch)
            yielded = False
            for batch in _without_global_rng(self.loader):
                yielded = True
                yield {key: value.to(self.accelerator.device) for key, value in batch.items()}
            if not yielded:
                raise ValueError("The streaming training set gave no full batch on this process.")
            epoch += 1


def build_dataloaders(config: TrainConfig, accelerator, start_batch: int = 0):
    """``(TrainBatches, eval_loader)``; the eval loader yields pixel tensors, prepared for the processes."""
    data = config.data
    train_set, eval_set = load_train_and_eval_sets(config)
    train_transform = TrainTransform(data.image_size, min_scale=data.min_crop_scale, crop=data.train_crop)
    eval_transform = EvalTransform(data.image_size)
    loader_kwargs = {"num_workers": data.num_workers, "collate_fn": collate_images}
    sampler = None
    if data.streaming:
        shard = split_dataset_by_node(train_set, rank=accelerator.process_index, world_size=accelerator.num_processes)
        shard = shard.shuffle(seed=config.seed, buffer_size=STREAMING_SHUFFLE_BUFFER)
        train_data = DecodedImageIterable(shard, train_transform, data.image_column, seed=config.seed)
        train_loader = DataLoader(train_data, batch_size=config.training.batch_size, drop_last=True, **loader_kwargs)
        eval_shard = split_dataset_by_node(eval_set, rank=accelerator.process_index, world_size=accelerator.num_processes)
        eval_data = DecodedImageIterable(eval_shard, eval_transform, data.image_column)
        eval_loader = DataLoader(eval_data, batch_size=config.eval.batch_size, **loader_kwargs)
    else:
        train_data = DecodedImageDataset(train_set, train_transform, data.image_column, seed=config.seed)
        sampler = EpochShuffleSampler(len(train_data), seed=config.seed)
        train_loader = DataLoader(train_data, batch_size=config.training.batch_size, sampler=sampler,
                                  drop_last=True, **loader_kwargs)
        # Evaluation: each process takes a contiguous shard of the images, without the padding
        # (repeated images) that Accelerate adds to even out batches; usage counts are summed later.
        eval_shard = split_dataset_by_node(eval_set, rank=accelerator.process_index, world_size=accelerator.num_processes)
        eval_data = DecodedImageDataset(eval_shard, eval_transform, data.image_column)
        eval_loader = DataLoader(eval_data, batch_size=config.eval.batch_size, **loader_kwargs)
        train_loader = accelerator.prepare(train_loader)
    batches = TrainBatches(accelerator, train_loader, train_data, sampler, data.streaming, start=start_batch)
    return batches, _PixelBatches(eval_loader, accelerator.device)


def collate_tokens(rows: list) -> dict:
    """Rows ``{"input_ids", "class_labels"}`` (torch-formatted) -> a batch of LongTensors."""
    return {
        "input_ids": torch.stack([torch.as_tensor(row["input_ids"]) for row in rows]).long(),
        "class_labels": torch.stack([torch.as_tensor(row["class_labels"]) for row in rows]).long(),
    }


class TokenBatchReader:
    """A token dataset read one batch at a time: one Arrow gather per batch.

    The DataLoader hands ``__getitems__`` the batch's row indices (from the seeded sampler, so the
    order and the resume are the sampler's). Reading rows one at a time through the ``torch``
    format took 3 ms per batch of 32 x 256 tokens (more than a GPT-B step's gap on an H100); one
    gather of the Arrow table and one reshape take 0.7 ms. Rows that are not flat lists of equal
    length take the row-by-row path (:func:`collate_tokens`), as before.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self.arrow = dataset.with_format("arrow", columns=["input_ids", "class_labels"])
        self.rows = dataset.with_format("torch", columns=["input_ids", "class_labels"])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]

    def __getitems__(self, indices: list) -> dict:
        import pyarrow as pa

        table = self.arrow[list(indices)]
        ids = table.column("input_ids").combine_chunks()
        labels = table.column("class_labels")
        if (pa.types.is_list(ids.type) and pa.types.is_integer(ids.type.value_type) and pa.types.is_integer(labels.type)
                and ids.null_count == 0 and labels.null_count == 0):
            lengths = np.diff(ids.offsets.to_numpy())
            if (lengths == lengths[0]).all():
                flat = ids.flatten().to_numpy(zero_copy_only=False)
                return {"input_ids": torch.from_numpy(flat.astype(np.int64).reshape(len(indices), -1)),
                        "class_labels": torch.from_numpy(labels.to_numpy().astype(np.int64))}
        return collate_tokens([self.rows[index] for index in indices])


def _batch_as_read(batch):
    """The DataLoader's collate_fn for :class:`TokenBatchReader`: its batches are already collated."""
    return batch if isinstance(batch, dict) else collate_tokens(batch)


def build_token_batches(dataset, batch_size: int, seed: int, accelerator, start_batch: int = 0,
                        num_workers: int = 0) -> TrainBatches:
    """Endless batches of a token dataset (``hf-vq tokenize``): one seeded permutation per epoch,
    sharded across processes by Accelerate, starting at micro-batch ``start_batch``."""
    reader = TokenBatchReader(dataset)
    sampler = EpochShuffleSampler(len(reader), seed=seed)
    loader = DataLoader(reader, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=num_workers,
                        collate_fn=_batch_as_read)
    return TrainBatches(accelerator, accelerator.prepare(loader), reader, sampler, streaming=False, start=start_batch)


class _PixelBatches:
    """The eval loader as plain pixel tensors (what ``evaluate_reconstruction`` takes)."""

    def __init__(self, loader, device):
        self.loader = loader
        self.device = device

    def __iter__(self):
        for batch in self.loader:
            yield batch["pixel_values"].to(self.device)

    def __len__(self):
        return len(self.loader)


def first_images(eval_batches, count: int) -> torch.Tensor:
    """The first ``count`` evaluation images (for reconstruction grids)."""
    collected, total = [], 0
    for pixel_values in eval_batches:
        collected.append(pixel_values)
        total += len(pixel_values)
        if total >= count:
            break
    return torch.cat(collected)[:count]
