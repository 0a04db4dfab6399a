"""
---
title: Devices and distributed training
summary: >
  The device of each process, checked and set up in one place; one process per
  device under torchrun: where a process stands, starting and closing the
  process group, keeping batch-norm statistics equal, splitting the test set,
  and a digest to check that every process ends with the same weights.
nav_order: 9
---

# Devices and distributed training

From the root of a clone, install the project and what its experiments use first:
`python3 -m pip install -e ".[experiment]"`.

`--device` is checked on the command line ([`check_device_name`](#check_device_name))
and set up once, before anything is computed ([`setup_device`](#setup_device)).

```
torchrun --nproc_per_node=4 experiments/cifar10.py
```

starts one process per device and tells each its place through environment
variables (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`). `--batch-size` stays the
*global* batch, split evenly among the processes, so the recipe's learning rate
still fits. Only the first process writes logs and checkpoints. GPUs talk
through NCCL; CPUs through gloo, which is how the tests run it on a machine
without GPUs. A plain `python experiments/cifar10.py` is a world of one
process, and none of the process group code does anything there.
"""

import dataclasses
import hashlib
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from experiments.runner.errors import UserError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """A plain `cuda` is the GPU of the local rank."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(name)
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', local_rank)
    return device


def check_device_name(key: str, value: str) -> str:
    """A device this machine has."""
    try:
        device = resolve_device(value)
    except RuntimeError:
        raise UserError(f"unknown device {value!r}: use auto, cpu, cuda or cuda:N", 2) from None
    if device.type not in ('cpu', 'cuda'):
        raise UserError(f"device must be auto, cpu or cuda, got {value!r}", 2)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise UserError("device cuda was asked for, but PyTorch sees no CUDA GPU", 2)
    if device.type == 'cuda' and device.index >= torch.cuda.device_count():
        raise UserError(f"there is no GPU {device}", 2)
    return value


def setup_device(name: str, sync_bn: bool) -> torch.device:
    device = resolve_device(name)
    if device.type == 'cpu':
        # Numbers too small for a normal float ("subnormals") appear as the
        # learning rate and the gradients shrink; x86 CPUs compute with them
        # many times slower. Flushing them to zero costs no accuracy.
        torch.set_flush_denormal(True)
    if sync_bn and device.type != 'cuda':
        raise UserError("--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm does not run "
                        "on CPUs", 2)
    return device


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """This process's place in the run."""
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def world_size() -> int:
    """The number of processes, known before the process group starts."""
    return int(os.environ.get('WORLD_SIZE', '1'))


def init_distributed(device: torch.device) -> DistInfo:
    if world_size() <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0')), world_size())
    if device.type == 'cuda':
        # Each process owns one GPU; collectives use the current device
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return info


def end_distributed(info: DistInfo, finished: bool):
    """
    After a finished run each process first waits for the others at a barrier:
    the first process is still writing the run's summary when the rest are done,
    and a process that tears down its connections while a peer still holds the
    other end can abort on its way out, failing a run that had finished. After
    an error the peers may be gone or stuck, so no process waits for them.
    """
    if not info.enabled:
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def broadcast_buffers(model: nn.Module):
    """
    `DistributedDataParallel` keeps the parameters equal, but each process
    updates batch normalization's running statistics from its own part of the
    batch. Copying the first process's buffers to the others after each epoch
    makes every process evaluate, and end with, the same model.
    """
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


class ShardSampler(Sampler):
    """Each process evaluates its own part of the test set, with no image counted twice."""

    def __init__(self, n: int, rank: int, world_size: int):
        self.indices = list(range(rank, n, world_size))

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


def weights_digest(model: nn.Module) -> str:
    """A SHA-256 of all weights and buffers: after a distributed run, equal in every process."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
