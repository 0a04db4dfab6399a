r"""
---
title: From scratch on real images, against a plain loop
summary: >
  scikit-learn's handwritten digits, written as a folder of 32-pixel PNG
  images, trained from scratch by the ImageNet experiment with its defaults and
  by a plain PyTorch loop with the same model, data and epochs: the
  experiment's from-scratch recipe must come within 5 points of the loop.
nav_order: 8
---

# From scratch on real images, against a plain loop

The [ImageNet experiment](../experiments/imagenet.html) trains from scratch
with its own recipe when it starts from no weights. Whether that recipe is any
good is a question about real images, and the machines that build this
project have none to download. scikit-learn ships one small set inside its
package: 1,797 handwritten digits of $8 \times 8$ pixels in 17 grey levels.
This check

1. writes them, upscaled to $32 \times 32$ (bicubic), as an image folder
   (`train/` and `val/`, one folder per digit, PNG files; a fifth of each
   digit's images, drawn with a fixed seed, for testing);
2. trains a ConvMixer on it with a **plain PyTorch loop** of the kind one
   writes from the paper's CIFAR-10 recipe: `RandomResizedCrop` of 75 % to
   100 % of the area, a horizontal flip, RandAugment(2, 9), AdamW with a
   one-cycle learning rate peaking at 0.01, weight decay 0.005, batch 128;
3. trains the same ConvMixer with `experiments/imagenet.py` on the folder,
   giving it only the model, the epochs, the seed, the device and its loader:
   **no recipe flags**;
4. optionally (`--old-defaults`), the same with the fine-tuning recipe forced
   and the crop scale of ImageNet, the settings a from-scratch run had before
   it got its own recipe;

and prints the test accuracies. It fails (exit status 1) when the
experiment's from-scratch accuracy is more than `--tolerance` points (5) below
the plain loop's.

```
python3 -m pip install -e ".[experiment,test]"   # scikit-learn comes with the test extra
python benchmarks/digits_check.py --epochs 8 --d-model 32 --n-layers 2 --patch-size 4
```

Both sides are made alike wherever a plain loop allows, so that the
comparison is between the recipes and not between draws of chance: the same
seed, the same starting weights (both seed the model's initialisation with
it), the same order of the training images in every epoch (the loop uses the
experiment's seeded `DistributedSampler`), the same number of loader workers
(`--workers`, 2) and the same per-image augmentation (`--augment torchvision`
for the experiment). The random crops and RandAugment's choices still differ
between the two, so the numbers move by a point or two with the seed; every
random draw, the loader workers' included, comes from the seed. Eight epochs
of this small ConvMixer leave both near 90 %, far above chance (10 %).
The test suite runs it with exactly these flags.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from torch import nn

from labml_convmixer.model import convmixer

ROOT = Path(__file__).resolve().parent.parent
IMAGENET = ROOT / 'experiments' / 'imagenet.py'


# ## The folder
#
# The digits are grey levels 0 to 16; they become 8-bit RGB images (the folder
# reader converts every image to RGB anyway), upscaled with PIL's bicubic
# filter, the way a small photograph would be.

def write_digits(root: Path, size: int = 32, val_fraction: float = 0.2,
                 seed: int = 0) -> Dict[str, int]:
    """`root/{train,val}/<digit>/NNNN.png`; the number of images of each split."""
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(seed)
    counts = {'train': 0, 'val': 0}
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        n_val = round(len(indices) * val_fraction)
        for split, part in (('val', indices[:n_val]), ('train', indices[n_val:])):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in part:
                grey = (digits.images[i] * (255 / 16)).round().astype(np.uint8)
                image = Image.fromarray(grey).convert('RGB').resize(
                    (size, size), Image.BICUBIC)
                image.save(folder / f'{i:04d}.png')
            counts[split] += len(part)
    return counts


# ## The plain loop
#
# Everything in one function, from torchvision's `ImageFolder` to the test
# accuracy after the last epoch; ImageNet's mean and standard deviation, as
# the experiment uses for a model built from flags.

def plain_loop(root: Path, model_args: Dict[str, int], epochs: int, seed: int,
               workers: int, batch_size: int = 128, lr: float = 0.01,
               weight_decay: float = 0.005) -> float:
    from torchvision import datasets, transforms
    torch.manual_seed(seed)
    normalise = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    train_set = datasets.ImageFolder(root / 'train', transforms.Compose([
        transforms.RandomResizedCrop(32, scale=(0.75, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.RandAugment(num_ops=2, magnitude=9),
        transforms.ToTensor(), normalise]))
    val_set = datasets.ImageFolder(root / 'val', transforms.Compose([
        transforms.ToTensor(), normalise]))
    # The experiment's order of the images: a shuffle per epoch from the seed
    # and the epoch number (its folder lists the files as `ImageFolder` does)
    order = torch.utils.data.DistributedSampler(range(len(train_set)), num_replicas=1,
                                                rank=0, shuffle=True, seed=seed)
    train = torch.utils.data.DataLoader(train_set, batch_size, sampler=order,
                                        num_workers=workers, persistent_workers=workers > 0)
    val = torch.utils.data.DataLoader(val_set, 256, num_workers=0)
    model = convmixer(**model_args, n_classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for epoch in range(epochs):
        order.set_epoch(epoch)
        model.train()
        for i, (x, y) in enumerate(train):
            t = epoch + (i + 1) / len(train)
            optimizer.param_groups[0]['lr'] = float(np.interp(
                t, [0, epochs * 2 / 5, epochs * 4 / 5, epochs], [0, lr, lr / 20, 0]))
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in val:
            correct += (model(x).argmax(-1) == y).sum().item()
            total += len(y)
    return correct / total


# ## The experiment
#
# Run as a user runs it, in its own process; its `summary.json` has the test
# accuracy after the last epoch and the settings it used.

def experiment(root: Path, logs: Path, model_args: Dict[str, int], epochs: int,
               seed: int, workers: int, extra: List[str]) -> Dict:
    flags = ['--d-model', model_args['d_model'], '--n-layers', model_args['n_layers'],
             '--kernel-size', model_args['kernel_size'],
             '--patch-size', model_args['patch_size'], '--activation', 'gelu',
             '--image-size', 32, '--epochs', epochs, '--seed', seed,
             '--num-workers', workers, '--augment', 'torchvision',
             '--device', 'cpu', '--no-compile', '--precision', 'fp32']
    command = [sys.executable, str(IMAGENET), '--data-dir', str(root),
               '--logs-dir', str(logs), *map(str, flags), *extra]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"imagenet.py failed: {result.stderr.strip()[-2000:]}")
    run = max((logs / 'imagenet').iterdir(), key=lambda p: p.stat().st_mtime)
    return json.loads((run / 'summary.json').read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('---')[1].strip())
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--d-model', type=int, default=64)
    parser.add_argument('--n-layers', type=int, default=4)
    parser.add_argument('--kernel-size', type=int, default=5)
    parser.add_argument('--patch-size', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tolerance', type=float, default=5.0,
                        help='points the experiment may be below the plain loop')
    parser.add_argument('--old-defaults', action='store_true',
                        help='also run the fine-tuning recipe with ImageNet crops')
    parser.add_argument('--workers', type=int, default=2,
                        help='loader worker processes, the same for both runs')
    parser.add_argument('--json', metavar='FILE', help='write the numbers here too')
    args = parser.parse_args(argv)
    model_args = dict(d_model=args.d_model, n_layers=args.n_layers,
                      kernel_size=args.kernel_size, patch_size=args.patch_size)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        root, logs = Path(tmp) / 'digits', Path(tmp) / 'logs'
        counts = write_digits(root)
        print(f"digits: {counts['train']} training, {counts['val']} test images, "
              f"32x32; ConvMixer-{args.d_model}/{args.n_layers} k{args.kernel_size} "
              f"p{args.patch_size}, {args.epochs} epochs", flush=True)
        start = time.perf_counter()
        loop = plain_loop(root, model_args, args.epochs, args.seed, args.workers)
        print(f"plain loop:              {100 * loop:5.1f} %  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        start = time.perf_counter()
        ours = experiment(root, logs, model_args, args.epochs, args.seed, args.workers, [])
        print(f"imagenet.py, defaults:   {100 * ours['valid_accuracy']:5.1f} %  "
              f"({time.perf_counter() - start:.0f} s; recipe {ours['recipe']['name']})",
              flush=True)
        numbers = {'plain_loop': loop, 'experiment': ours['valid_accuracy'],
                   'recipe': ours['recipe'], 'epochs': args.epochs, **counts}
        if args.old_defaults:
            old = experiment(root, logs, model_args, args.epochs, args.seed, args.workers,
                             ['--recipe', 'fine-tune', '--scale', '0.08'])
            numbers['old_defaults'] = old['valid_accuracy']
            print(f"fine-tuning recipe, ImageNet crops: "
                  f"{100 * old['valid_accuracy']:5.1f} %", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2) + '\n')
    gap = 100 * (loop - ours['valid_accuracy'])
    if gap > args.tolerance:
        print(f"FAIL: the experiment is {gap:.1f} points below the plain loop "
              f"(allowed: {args.tolerance:g})", file=sys.stderr)
        return 1
    print(f"ok: within {args.tolerance:g} points of the plain loop ({gap:+.1f})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
