"""
---
title: The reference training loop
summary: >
  What the reference convmixer-cifar10 train.py does in each training step,
  rebuilt as the baseline of the speed benchmark, and what our training path
  does differently, point by point, with the reason for each difference.
nav_order: 1
---

# The reference training loop

The paper's authors trained ConvMixer-256/8 on CIFAR-10 with a short script,
`train.py` of the convmixer-cifar10 repository. Its numbers (92.6 % test
accuracy after 25 epochs, 42.6 s an epoch on a 2080 Ti) are what the
[CIFAR-10 experiment](../experiments/cifar10.html) is measured against, and its
training loop is what the [speed benchmark](train_speed.html) compares our
training path with. This page rebuilds that loop, so that both can run in one
process, on the same machine, on the same data.

## What the reference does

**The model** is one `nn.Sequential`: the patch embedding (a convolution
with kernel and stride $p$, GELU, batch normalization), then $d$ blocks of a
residual depth-wise convolution and a point-wise one, each followed by GELU and
batch normalization, then average pooling, flattening and a linear layer. The
depth-wise convolution keeps the image size with `padding="same"`. The layers
have no names, only positions: `0.weight`, `3.0.fn.0.weight`, ...

**The data** is `torchvision.datasets.CIFAR10`, which keeps the training set
in memory as one `uint8` array of `[50000, 32, 32, 3]` and turns each image
into a PIL image before its transform. Each image is augmented on its own by

1. `RandomResizedCrop(32, scale=(1, 1), ratio=(1, 1))`, which at scale 1
   keeps the whole image and resizes it to the size it already has;
2. a horizontal flip with probability ½;
3. `RandAugment` with 2 operations at magnitude 12;
4. `ToTensor`, from PIL to a `float32` tensor in $[0, 1]$;
5. `Normalize` with CIFAR-10's per-channel mean and standard deviation,

in the 2 worker processes of a shuffling `DataLoader` with batches of 512.

**Each step** computes the learning rate from the one-cycle schedule (a
`numpy.interp` over the fraction of epochs done) and writes it into AdamW's
parameter group; AdamW is PyTorch's default implementation. The forward pass
and the cross-entropy loss run under fp16 autocast, the backward pass and the
optimizer step go through a `GradScaler`, and the model is wrapped in
`nn.DataParallel`. After the step the loss and the number of correct
predictions are read back with `.item()`, to add them up on the host.

## What our path does differently

| | reference `train.py` | our path | why |
|---|---|---|---|
| model definition | one `nn.Sequential`, layers known by position | [`ConvMixer`](../labml_convmixer/model.html) with named parts (`patch_emb`, `conv_mixer_layers`, `classification`) | a weight's name says what it is; the layers, their order and their parameters are the same, and [`convert_state_dict`](../labml_convmixer/pretrained.html#convert_state_dict) maps the positional names onto ours |
| padding | `padding="same"` | integer padding $\\lfloor k/2 \\rfloor$ for odd $k$, an explicit pad for even $k$ | `"same"` goes through a separate convolution operator that ONNX export and trace-based FLOP counters do not know; integer padding computes the same numbers |
| memory format | NCHW | channels_last (NHWC) on a CPU; NCHW on a GPU unless an A/B test says otherwise | oneDNN's NHWC convolutions are much faster on a CPU; on a GPU it depends on the kernel size |
| compile | eager | eager on a CPU; `torch.compile`, in place, on a GPU | on a GPU the element-wise steps between convolutions are fused into few kernels; on our 2-core CPU the compiled kernels compute GELU again where eager mode keeps its result, and lose (measured on the Performance page) |
| freed memory | glibc's default: blocks of 32 MiB and more come from the kernel and go back to it | kept in the process for the next tensors, on Linux ([`keep_freed_memory`](../experiments/runner/speed.html#keep_freed_memory)) | a step makes about a hundred 32 MiB tensors; fresh pages cost a page fault every 4 KiB |
| optimizer | default AdamW | fused AdamW | one kernel updates every parameter, instead of a loop of small kernels per tensor |
| precision | fp16 autocast and a `GradScaler` | bf16 autocast where the GPU has it, else fp16 with a scaler; fp32 on a CPU | bf16 has float32's exponent range: no scaling, no skipped steps; bf16 autocast measured 17 times slower on our CPU, which has no bf16 instructions |
| several GPUs | `DataParallel`, one process for all GPUs | one process a GPU with `DistributedDataParallel`, no wrapper on a single GPU | `DataParallel` copies the weights to every GPU in every forward pass and drives them all from one Python process |
| data pipeline | PIL images, transformed one at a time in 2 workers | on a CPU the same augmentations on `uint8` tensors in workers; on a GPU whole batches augmented on the GPU ([`BatchAugment`](../experiments/datasets/gpu_augment.html)) | no PIL round trip per image, no identity crop; two CPU workers cannot feed a GPU (see [`default_settings`](../experiments/runner/speed.html#default_settings)) |
| read-backs | two `.item()` calls every step | sums kept on the device, read once per epoch | `.item()` makes the host wait until the device has finished the step, so the device's queue runs empty every step |

The first two rows change how the network is written, not what it computes:
a test loads the weights of the model below into our `ConvMixer` and gets the
same outputs, for an odd and an even kernel size. Everything in the "our path"
column lives in the experiment's modules
([`speed.py`](../experiments/runner/speed.html),
[`cifar10_data.py`](../experiments/datasets/cifar10_data.html) and
[`gpu_augment.py`](../experiments/datasets/gpu_augment.html)), and the benchmark imports
it from there.

## How the baseline differs from the reference

Only where the difference cannot change the speed, or where the reference
cannot run at all:

* the reference calls `.cuda()` and runs on a GPU only; on a CPU the baseline
  runs the same loop in fp32, without the scaler and without `DataParallel`;
* the learning rate is written into the optimizer before every step, as in the
  reference, but it is a fixed value: where the number comes from costs
  nothing next to a training step;
* the images are synthetic, served as `CIFAR10` serves them (a `uint8` array in
  memory, a PIL image an item), since the pixel values do not change the speed;
* the reference's test pass after each epoch is left out, on both sides of the
  benchmark.
"""

import contextlib
from typing import Callable, List

import torch
import torch.nn.functional as F
from torch import nn

from experiments.datasets.cifar10_data import CIFAR10_MEAN, CIFAR10_STD

# CIFAR-10's ten classes.
N_CLASSES = 10


# ## The model
#
# The residual connection is its own module, so that the whole network can be
# one `nn.Sequential`. The wrapped part is called `fn`, as in the reference, so
# the weights have the reference's names (`3.0.fn.0.weight`, ...) and a test can
# load them into our model.

class AddInput(nn.Module):
    """$f(x) + x$: the residual connection around the depth-wise part."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


# Every convolution is followed by GELU and then batch normalization, as in the
# paper. Only the depth-wise part of a block has a residual connection.

def baseline_convmixer(d_model: int, n_layers: int, kernel_size: int, patch_size: int,
                       n_classes: int = N_CLASSES) -> nn.Sequential:
    layers: List[nn.Module] = [
        nn.Conv2d(3, d_model, kernel_size=patch_size, stride=patch_size),
        nn.GELU(),
        nn.BatchNorm2d(d_model),
    ]
    for _ in range(n_layers):
        layers.append(nn.Sequential(
            AddInput(nn.Sequential(
                nn.Conv2d(d_model, d_model, kernel_size, groups=d_model, padding='same'),
                nn.GELU(),
                nn.BatchNorm2d(d_model),
            )),
            nn.Conv2d(d_model, d_model, kernel_size=1),
            nn.GELU(),
            nn.BatchNorm2d(d_model),
        ))
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(d_model, n_classes)]
    return nn.Sequential(*layers)


# ## The data

class PILDataset(torch.utils.data.Dataset):
    """
    Serves images as PIL images through a transform, as `torchvision.datasets.CIFAR10`
    does: the per-image pipeline of the reference.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        # `[n, 32, 32, 3]` numpy array, what CIFAR10 keeps in memory
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def reference_transform():
    """The reference's training transform, with the recipe's settings, on PIL images."""
    import torchvision.transforms as T
    return T.Compose([
        T.RandomResizedCrop(32, scale=(1.0, 1.0), ratio=(1.0, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandAugment(num_ops=2, magnitude=12),
        T.ToTensor(),
        T.Normalize(CIFAR10_MEAN, CIFAR10_STD),
    ])


# ## The loop

class BaselineLoop:
    """
    The reference-style loop: `.item()` per step, fp16 + scaler and DataParallel on CUDA.
    `args` holds the benchmark's options: the model's sizes (`d_model`, `n_layers`,
    `kernel_size`, `patch_size`), `lr` and `weight_decay`.
    """

    def __init__(self, args, device: torch.device):
        self.device = device
        model = baseline_convmixer(args.d_model, args.n_layers, args.kernel_size, args.patch_size)
        model = model.to(device)
        if device.type == 'cuda':
            model = nn.DataParallel(model)
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        self.use_amp = device.type == 'cuda'
        self.scaler = torch.amp.GradScaler('cuda') if self.use_amp else None
        self.lr = args.lr
        self.loss_sum, self.correct = 0.0, 0

    def step(self, images: torch.Tensor, labels: torch.Tensor):
        images, labels = images.to(self.device), labels.to(self.device)
        self.optimizer.param_groups[0].update(lr=self.lr)
        self.optimizer.zero_grad()
        ctx = torch.autocast('cuda', dtype=torch.float16) if self.use_amp else contextlib.nullcontext()
        with ctx:
            output = self.model(images)
            loss = F.cross_entropy(output, labels)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        # The reference reads its statistics back every step.
        self.loss_sum += loss.item() * labels.shape[0]
        self.correct += (output.max(1)[1] == labels).sum().item()

    @staticmethod
    def loader(images, labels, batch_size: int, workers: int):
        return torch.utils.data.DataLoader(PILDataset(images, labels, reference_transform()),
                                           batch_size=batch_size, shuffle=True, num_workers=workers)

    def epoch(self, loader) -> int:
        self.model.train()
        n = 0
        for images, labels in loader:
            self.step(images, labels)
            n += labels.shape[0]
        return n
