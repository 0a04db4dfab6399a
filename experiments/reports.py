"""
---
title: Reports
summary: >
  What a run leaves for a reader: one line per epoch, summary.json and
  metrics.png at the end, and for `--evaluate` a per-class table and a
  confusion matrix.
nav_order: 10
---

# Reports

labml records every metric in the run's `log.jsonl`; these are the files meant
for a person, or a script, to read after the run:

* a console line per epoch ([`format_epoch`](#format_epoch));
* `summary.json` with the final numbers, the settings that were changed and
  the whole history, and `metrics.png`, loss and accuracy per epoch
  ([`write_summary`](#write_summary));
* for `--evaluate RUN_UUID`: the accuracy of each class, `evaluation.json`,
  and `confusion_matrix.png`, the count of test images of each true class
  (rows) given each predicted class (columns) ([`evaluate`](#evaluate)).

Every file is written atomically, so a reader never sees half of one.
"""

import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labml import logger, monit

from experiments import speed
from experiments.runs import atomic_write_bytes, atomic_write_text


def format_epoch(r: Dict[str, float], epochs: int) -> str:
    width = len(str(epochs))
    return (f"epoch {r['epoch']:{width}d}/{epochs}  "
            f"train loss {r['train_loss']:.4f} acc {100 * r['train_accuracy']:6.2f}%  "
            f"test loss {r['valid_loss']:.4f} acc {100 * r['valid_accuracy']:6.2f}%  "
            f"{r['images_per_second']:8.1f} img/s  {r['seconds']:7.1f} s")


def _pyplot():
    # A file, not a window: the Agg back end needs no display
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path: Path):
    atomic_write_bytes(path, lambda f: fig.savefig(f, format='png', dpi=100))
    _pyplot().close(fig)


def plot_history(history: List[Dict[str, float]], path: Path):
    """Loss and accuracy per epoch, for training and test data, as a PNG."""
    from matplotlib.ticker import MaxNLocator
    plt = _pyplot()
    epochs = [r['epoch'] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (('train', 'train'), ('valid', 'test')):
        ax_loss.plot(epochs, [r[f'{key}_loss'] for r in history], marker='o', label=label)
        ax_acc.plot(epochs, [100 * r[f'{key}_accuracy'] for r in history], marker='o',
                    label=label)
    ax_loss.set(xlabel='epoch', ylabel='cross-entropy loss', title='Loss')
    ax_acc.set(xlabel='epoch', ylabel='accuracy (%)', title='Accuracy')
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)


def write_summary(run_path: Path, history: List[Dict[str, float]], **facts: Any) -> Dict[str, Any]:
    """
    `summary.json`: the last epoch's numbers, totals over the run, the `facts`
    the experiment adds (changed settings, device, classes, ...) and the history.
    """
    last = history[-1]
    summary = {
        'valid_accuracy': last['valid_accuracy'],
        'valid_loss': last['valid_loss'],
        'train_accuracy': last['train_accuracy'],
        'train_loss': last['train_loss'],
        'epochs': len(history),
        'seconds': sum(r['seconds'] for r in history),
        'images_per_second': float(np.mean([r['images_per_second'] for r in history])),
        **facts,
        'run_uuid': run_path.name,
        'history': history,
    }
    atomic_write_text(run_path / 'summary.json', json.dumps(summary, indent=2))
    plot_history(history, run_path / 'metrics.png')
    return summary


# ## Evaluation of a finished run

def evaluate(model: nn.Module, loader, classes: List[str], *, device: torch.device,
             precision: str, channels_last: bool) -> torch.Tensor:
    """The confusion matrix of `model` over `loader`, `[n_classes, n_classes]`, and the loss sum."""
    model.eval()
    n = len(classes)
    confusion = torch.zeros(n * n, dtype=torch.long, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad(), monit.section('Evaluate'):
        for images, labels in loader:
            images, labels = speed.to_device_batch(images, labels, device,
                                                   channels_last=channels_last)
            with speed.autocast(device, precision):
                logits = model(images).float()
            loss_sum += F.cross_entropy(logits, labels, reduction='sum').double()
            confusion += torch.bincount(labels * n + logits.argmax(dim=-1), minlength=n * n)
    return confusion.view(n, n).cpu(), loss_sum.item()


def write_evaluation(run_path: Path, confusion: torch.Tensor, loss_sum: float,
                     classes: List[str], epochs_trained: int) -> Dict[str, Any]:
    """Print the per-class table; write `evaluation.json` and `confusion_matrix.png`."""
    total = int(confusion.sum())
    per_class = {name: confusion[i, i].item() / max(int(confusion[i].sum()), 1)
                 for i, name in enumerate(classes)}
    result = {'run_uuid': run_path.name, 'epochs_trained': epochs_trained,
              'test_accuracy': confusion.diag().sum().item() / total,
              'test_loss': loss_sum / total, 'test_images': total,
              'per_class_accuracy': per_class, 'confusion_matrix': confusion.tolist()}
    logger.log(f"{'class':<12} {'images':>7} {'accuracy':>9}")
    for i, name in enumerate(classes):
        logger.log(f"{name:<12} {int(confusion[i].sum()):7d} {100 * per_class[name]:8.2f}%")
    atomic_write_text(run_path / 'evaluation.json', json.dumps(result, indent=2))
    plot_confusion(confusion, classes, run_path / 'confusion_matrix.png')
    return result


def plot_confusion(confusion: torch.Tensor, classes: List[str], path: Path):
    plt = _pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.6 + 0.6 * n))
    ax.imshow(confusion.numpy(), cmap='Blues')
    ax.set_xticks(range(n), classes, rotation=45, ha='right')
    ax.set_yticks(range(n), classes)
    ax.set(xlabel='predicted class', ylabel='true class', title='Confusion matrix (test set)')
    threshold = confusion.max().item() / 2
    for i in range(n):
        for j in range(n):
            v = confusion[i, j].item()
            ax.text(j, i, str(v), ha='center', va='center', fontsize=8,
                    color='white' if v > threshold else 'black')
    fig.tight_layout()
    _save_figure(fig, path)
