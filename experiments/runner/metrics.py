"""
---
title: Loss and accuracy
summary: >
  One meter for training, for testing after each epoch and for --evaluate: the
  confusion matrix, the loss and the top-5 hits, summed on the device and added
  up over the processes once per pass.
nav_order: 6
---

# Loss and accuracy

Every number a run reports comes from one [`Meter`](#Meter): the training
epoch's loss and accuracy, the test pass after each epoch, and a pass of
`--evaluate` or `--eval-only`. A meter keeps three sums for the batches it was
given:

* the **confusion matrix**, the count of images of each true class (rows)
  given each predicted class (columns); top-1 accuracy, overall and per class,
  follows from it;
* the **loss**, summed over the images;
* the **top-5 hits**, images whose label is among the five highest logits.

The sums stay on the device as tensors. Reading a value from a GPU waits for
all queued work, so doing it every batch would stall the pipeline; we read
once per pass, in [`Meter.result`](#Meter.result), where the processes of a
distributed run also add up their sums.
"""

import dataclasses
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from labml import monit

from experiments.runner import speed


@dataclasses.dataclass
class Result:
    """The sums of a pass, read back from the device."""
    confusion: torch.Tensor  # `[n_classes, n_classes]`, on the CPU
    loss_sum: float
    top5_hits: int

    @property
    def images(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return self.confusion.diag().sum().item() / max(self.images, 1)

    @property
    def top5(self) -> float:
        return self.top5_hits / max(self.images, 1)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.images, 1)

    def per_class(self) -> List[float]:
        """The top-1 accuracy of each class, in the order of the class indices."""
        counts = self.confusion.sum(dim=1).clamp(min=1)
        return (self.confusion.diag() / counts).tolist()

    def numbers(self, prefix: str, classes: List[str]) -> Dict[str, Any]:
        """Top-1, top-5, loss, images, per-class accuracy: `{prefix}_accuracy`, ..."""
        return {f'{prefix}_accuracy': self.accuracy, f'{prefix}_top5': self.top5,
                f'{prefix}_loss': self.loss, f'{prefix}_images': self.images,
                'per_class_accuracy': dict(zip(classes, self.per_class()))}


class Meter:
    """
    ## The sums of a pass

    `add` takes a batch's mean loss, logits and labels. The confusion matrix is
    counted with one `bincount` of `label * n + prediction`, whose length is
    fixed at $n^2$: a count sized by the largest label would read it back
    from the device.
    """

    def __init__(self, n_classes: int, device: torch.device):
        self.n = n_classes
        self.confusion = torch.zeros(n_classes * n_classes, dtype=torch.long, device=device)
        # The loss summed over images, and the top-5 hits
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor):
        logits = logits.detach()
        top = logits.topk(min(5, self.n), dim=-1).indices
        self.sums += torch.stack([loss.detach().double() * labels.shape[0],
                                  (top == labels[:, None]).any(dim=-1).sum().double()])
        self.confusion += torch.bincount(labels * self.n + logits.argmax(dim=-1),
                                         minlength=self.n * self.n)

    def result(self, distributed: bool = False) -> Result:
        """The sums over all processes (once per pass: it adds them in place)."""
        if distributed:
            torch.distributed.all_reduce(self.confusion)
            torch.distributed.all_reduce(self.sums)
        loss_sum, top5 = self.sums.tolist()
        return Result(self.confusion.view(self.n, self.n).cpu(), loss_sum, int(top5))


class LossWatch:
    """
    ## Stopping at the first non-finite loss

    A learning rate too high for the model makes the loss overflow to inf or
    NaN, and from there every weight turns NaN: training on only burns time
    and would save a checkpoint of NaNs. The watch keeps, on the device, the
    first step whose loss was not finite, updated by a kernel that queues like
    any other and reads nothing back. Every `every` steps
    [`check`](#LossWatch.check) reads that one number. On a CPU there is no
    queue to wait for, and the trainer checks every step; on a GPU a read
    drains the queue, so the trainer reads once every
    [`CUDA_CHECK_EVERY`](trainer.html#train) steps, and a diverged run stops at
    most that many steps after the first bad one, still naming that step.
    """

    def __init__(self, n_steps: int, device: torch.device, every: int):
        self.n, self.every = n_steps, every
        # The first bad step since the last check; `n_steps` while there is none
        self.first = torch.full((), n_steps, device=device)

    def add(self, i: int, loss: torch.Tensor, distributed: bool = False) -> Optional[int]:
        """Record step `i`'s loss; at a check, the first bad step, if there is one."""
        bad = torch.where(torch.isfinite(loss.detach()), self.n, i)
        self.first = torch.minimum(self.first, bad)
        return None if (i + 1) % self.every else self.check(distributed)

    def check(self, distributed: bool = False) -> Optional[int]:
        """The first bad step since the last check, over all processes of a distributed run."""
        if distributed:
            torch.distributed.all_reduce(self.first, op=torch.distributed.ReduceOp.MIN)
        first = int(self.first)
        self.first.fill_(self.n)
        return first if first < self.n else None


def evaluate(model: nn.Module, loader, classes: List[str], *, device: torch.device,
             precision: str, channels_last: bool, distributed: bool = False) -> Result:
    """
    ## A test pass

    The model on every batch of `loader`, without gradients; `monit` draws the
    progress on a terminal. Pass the model without its
    `DistributedDataParallel` wrapper: there are no gradients to share, and
    the processes may have different numbers of test batches. In a
    distributed run each process evaluates its share and the sums are added.
    """
    model.eval()
    meter = Meter(len(classes), device)
    with torch.no_grad():
        for images, labels in monit.iterate('test', loader):
            images, labels = speed.to_device_batch(images, labels, device,
                                                   channels_last=channels_last)
            with speed.autocast(device, precision):
                logits = model(images)
                loss = F.cross_entropy(logits.float(), labels)
            meter.add(loss, logits, labels)
    return meter.result(distributed)
