"""
---
title: Training fast
nav_order: 8
summary: >
  The settings that make a ConvMixer training step fast: memory format,
  torch.compile, a fused AdamW, mixed precision, non-blocking copies, keeping
  freed memory and the data pipeline, each with a switch.
---

# Training fast

A training step of ConvMixer is a handful of convolutions, activations and
batch normalizations, repeated $d$ times. How fast it runs depends less on the
model than on how PyTorch is asked to run it. This module collects the knobs
that the [CIFAR-10 experiment](../cifar10.html) turns, each as a small function
with one job, so that the experiment and the
[benchmark](../../benchmarks/train_speed.html) use exactly the same code path:

| knob | function | what it buys |
|---|---|---|
| memory format | [`prepare_model`](#prepare_model) | `channels_last` (NHWC) lets oneDNN on CPU and cuDNN on GPU pick faster convolution kernels |
| `torch.compile` | [`prepare_model`](#prepare_model) | on a GPU, fuses activation, batch normalization and the residual add into few kernels, so the tensors are read once instead of three times; on a CPU it lost to eager mode (see [`default_settings`](#default_settings)) |
| fused AdamW | [`make_optimizer`](#make_optimizer) | one kernel updates all parameters instead of a loop of small ones |
| mixed precision | [`autocast`](#autocast), [`make_grad_scaler`](#make_grad_scaler), [`apply_precision_plan`](#apply_precision_plan) | bf16 or fp16 matrix units on GPUs; on a CPU with bf16 units, bf16 for the parts that gain from it |
| asynchronous copies | [`to_device_batch`](#to_device_batch) | the copy of the next batch to the GPU overlaps the compute |
| freed memory kept | [`keep_freed_memory`](#keep_freed_memory) | on a CPU, each large tensor reuses memory the process already has instead of asking the kernel for fresh pages |
| data pipeline | [`default_settings`](#default_settings) picks one of the [two pipelines](../datasets/cifar10_data.html#data-pipelines) | whole batches augmented between steps: a GPU never waits for CPU workers, and a CPU's cores are not shared with worker processes |

None of the first six changes what is computed beyond floating point rounding;
a test checks that the fast path and the plain eager path give the same losses
after 20 steps from the same weights and batches. The two data pipelines apply
the same augmentations with the same probabilities, but draw their random
numbers differently, so they give the same kind of batches, not the same
batches.

Which ones pay off depends on the machine, so [`default_settings`](#default_settings)
holds the choices we measured with the benchmark (see the Performance page).

This file depends only on `torch` and the Python standard library.
"""

import contextlib
import ctypes
import functools
import platform
import shutil
import sys
import warnings
from dataclasses import dataclass
from typing import ContextManager, Iterable, Optional, Tuple, Union

import torch
from torch import nn

# A device may be given as a `torch.device` or as a string such as `'cuda:0'`.
DeviceLike = Union[torch.device, str]

# The precisions that [`autocast`](#autocast) understands; `'bf16-plan'` is bf16
# with the depth-wise convolutions kept in fp32 (the [precision plan](#apply_precision_plan)).
PRECISIONS = ('fp32', 'bf16', 'fp16', 'bf16-plan')


def _device(device: DeviceLike) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


@functools.lru_cache(maxsize=None)
def compile_available(device_type: str) -> bool:
    """
    ## Can `torch.compile` generate code here?

    `torch.compile`'s default backend, Inductor, writes C++ (on CPU) or Triton
    (on CUDA) kernels and compiles them. Without a C++ compiler, or without
    Triton, the first call of the compiled model would fail; we check up front so
    that the experiment can fall back to eager mode with a warning instead.
    """
    if device_type == 'cpu':
        return shutil.which('g++') is not None or shutil.which('c++') is not None
    if device_type == 'cuda':
        try:
            import triton  # noqa: F401  (only checking that it is installed)
        except ImportError:
            return False
        return True
    return False


@dataclass(frozen=True)
class SpeedSettings:
    """
    ## A set of speed settings

    * `channels_last` stores activations as NHWC instead of NCHW
    * `compile` runs the model through `torch.compile`
    * `compile_mode` is passed to `torch.compile`; `'reduce-overhead'` also
      captures the step in CUDA graphs, which removes the launch cost of the
      many small kernels of a small model on a fast GPU
    * `fused` uses the single-kernel AdamW
    * `precision` is `'fp32'`, `'bf16'`, `'fp16'` or `'bf16-plan'`
    * `augment` is the training data pipeline: `'torchvision'` augments each
      image in data loader workers, `'batched'` augments whole batches on the
      device (see the [data page](../datasets/cifar10_data.html#data-pipelines)); the
      per-image one works on every device, so it is the default
    * `keep_memory` keeps the memory of freed tensors in the process for the
      next ones ([`keep_freed_memory`](#keep_freed_memory))
    """
    channels_last: bool
    compile: bool
    fused: bool
    precision: str
    compile_mode: Optional[str] = None
    augment: str = 'torchvision'
    keep_memory: bool = False


# The CPU precision where oneDNN has bf16 kernels (AVX-512 BF16 or AMX): the
# [precision plan](#apply_precision_plan), which the benchmark measured faster
# than fp32 there (see there)
CPU_BF16_DEFAULT = 'bf16-plan'


def default_settings(device: DeviceLike) -> SpeedSettings:
    """
    ## The defaults, chosen by measurement

    **CPU.** Eager mode, channels_last, fused AdamW, fp32 (the bf16 precision
    plan where the CPU has bf16 units), freed memory kept.
    The benchmark's sweep on a 2-core AMD EPYC with AVX2 (torch 2.14,
    ConvMixer-256/8, batch 128, every setting in a process of its own, timed in
    turns; see the Performance page) gave, in images/s: the reference-style
    loop 18.1 (31.6 with freed memory kept); eager NCHW 18.0; eager
    channels_last 23.1, with fused AdamW 23.2, and with freed memory kept
    39.6; compiled 23.5, and with freed memory kept 34.7. channels_last speeds
    up oneDNN's convolutions (the backward pass most of all). [Keeping freed
    memory](#keep_freed_memory) removes the page faults of a hundred fresh
    32 MiB tensors a step, which slowed every element-wise operation. Once
    they are gone, compiling loses: its fused backward kernels compute GELU,
    an `erf` per value, again from the convolution's output (their names in
    the profile say so), where eager mode reads back the value it stored;
    `--compile` is the switch for a machine where it wins. bf16
    autocast is many times slower on a CPU without bf16 instructions (2.3
    images/s), so CPU training stays in fp32 there. On a CPU with them the
    precision is `CPU_BF16_DEFAULT`, the [precision plan](#apply_precision_plan):
    1.52 times fp32's speed for the step on a 2-core Xeon with AMX.

    **CUDA.** bf16 where the GPU supports it (Ampere and newer), which needs no
    gradient scaler, else fp16 with one; compiled; fused AdamW. Whether
    channels_last pays off for the depth-wise convolution depends on the kernel
    size and the GPU (cuDNN's NHWC depth-wise kernels are fast for some $k$ and
    slow for others), so it is off by default here and left to the benchmark's
    A/B test.

    **The data pipeline.** `'batched'` on both. A GPU trains on tens of
    thousands of images per second, which two loader workers cannot feed at
    0.85 ms an image (the per-image pipeline alone, on the AMD EPYC above), so
    the training set sits on the GPU and is augmented a batch at a time. On a
    CPU the batched pipeline costs 0.2 ms an image in the training process, and
    end to end it kept nearly all of the model's speed:
    42.7 and 39.5 images/s in two runs, against 28.7 and 25.8 with per-image
    transforms in 2 loader workers, which are forked anew for every epoch from
    a process holding gigabytes and compete with the step for the 2 cores.
    """
    device = _device(device)
    if device.type == 'cuda':
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return SpeedSettings(channels_last=False, compile=compile_available('cuda'), fused=True,
                             precision='bf16' if bf16 else 'fp16', augment='batched')
    if device.type == 'cpu':
        precision = CPU_BF16_DEFAULT if cpu_has_fast_bf16() else 'fp32'
        return SpeedSettings(channels_last=True, compile=False, fused=True, precision=precision,
                             augment='batched', keep_memory=True)
    # Anything else (`mps`, ...): the plain path, which works everywhere.
    return SpeedSettings(channels_last=False, compile=False, fused=False, precision='fp32',
                         augment='torchvision')


def prepare_model(model: nn.Module, device: DeviceLike, *, channels_last: bool,
                  compile: bool, compile_mode: Optional[str] = None,
                  precision: str = 'fp32') -> nn.Module:
    """
    ## Move, lay out and compile the model

    The model's parameters go to `device`. With `channels_last` the 4-d
    convolution weights are stored as NHWC; the input batches must then be
    channels_last too (see [`to_device_batch`](#to_device_batch)), and the
    convolutions keep that layout from layer to layer.

    We compile with `nn.Module.compile()`, which compiles the module *in place*
    instead of wrapping it: the returned object is the same module, so its
    `state_dict()` keys stay `patch_emb.conv.weight`, ... and checkpoints load
    into an uncompiled model unchanged. Compilation itself happens lazily at the
    first forward call (tens of seconds on a small CPU), and again if the batch
    shape changes (the last, smaller batch of an epoch; evaluation mode).

    With `precision='bf16-plan'` the depth-wise convolutions get the hooks of
    the [precision plan](#apply_precision_plan).
    """
    device = _device(device)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if precision == 'bf16-plan':
        apply_precision_plan(model)
    if compile:
        model.compile(mode=compile_mode)
    return model


def make_optimizer(params: Iterable, *, lr: float, weight_decay: float,
                   device: DeviceLike, fused: bool, eps: float = 1e-8) -> torch.optim.AdamW:
    """
    ## AdamW, fused where the device supports it

    A plain AdamW loops over the parameter tensors, launching a few small
    kernels for each of them. The `foreach` implementation batches them into a
    few multi-tensor kernels, and the `fused` one does the whole update in one
    kernel per group. PyTorch has fused AdamW for CUDA and CPU tensors; on other
    devices (or with `fused=False`) we let PyTorch pick its default, which is
    `foreach` on GPUs.
    """
    device = _device(device)
    use_fused = fused and device.type in ('cuda', 'cpu')
    if use_fused:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=eps,
                                 fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, eps=eps)


def autocast(device: DeviceLike, precision: str) -> ContextManager:
    """
    ## Mixed precision

    Returns the context manager to run the forward pass (and the loss) in:

    * `'fp32'` — nothing, everything in float32;
    * `'bf16'` — autocast to bfloat16: the same exponent range as float32, so no
      loss scaling is needed;
    * `'fp16'` — autocast to float16: small gradients underflow, so it goes
      together with a [gradient scaler](#make_grad_scaler);
    * `'bf16-plan'` — the same autocast as `'bf16'`; the depth-wise
      convolutions leave it through the hooks that
      [`prepare_model`](#prepare_model) puts on them
      ([precision plan](#apply_precision_plan)).

    Autocast runs matrix multiplications and convolutions in the low precision
    and keeps reductions such as batch normalization statistics and the loss in
    float32.

    On a CPU, bf16 is fast only with instructions made for it (AVX-512 BF16 or
    AMX): without them oneDNN does not take bf16 convolutions, and PyTorch's
    fallback runs the depth-wise convolution one channel at a time, some
    seventeen times slower than fp32 (measured: 2.3 images/s against 39.6
    for ConvMixer-256/8 on a 2-core AVX2 machine). So we warn.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == 'fp32':
        return contextlib.nullcontext()
    bf16 = precision in ('bf16', 'bf16-plan')
    if bf16 and _device(device).type == 'cpu' and not cpu_has_fast_bf16():
        warnings.warn(f"{precision} on this CPU (no AVX-512 BF16 or AMX) is many times slower than fp32; "
                      "use --precision fp32", stacklevel=2)
    dtype = torch.bfloat16 if bf16 else torch.float16
    return torch.autocast(device_type=_device(device).type, dtype=dtype)


@functools.lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN computes bf16 convolutions on this CPU (AVX-512 BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def is_depth_wise(module: nn.Module) -> bool:
    """A convolution with a group for each channel: ConvMixer's depth-wise one."""
    return (isinstance(module, nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels == module.out_channels)


def _enter_fp32(module: nn.Module, args: tuple):
    # Remember whether autocast was on and in which dtype the input came,
    # turn autocast off, and hand the convolution an fp32 input
    x = args[0]
    on = torch.is_autocast_enabled(x.device.type)
    module._precision_plan_stack.append((x.device.type, on, x.dtype))
    if on:
        torch.set_autocast_enabled(x.device.type, False)
        return (x.float(),) + tuple(args[1:])
    return None


def _leave_fp32(module: nn.Module, args: tuple, output: torch.Tensor):
    # Autocast back on (also after an exception), the output in the input's dtype
    device_type, on, dtype = module._precision_plan_stack.pop()
    if on:
        torch.set_autocast_enabled(device_type, True)
        return output.to(dtype)
    return None


def apply_precision_plan(model: nn.Module) -> nn.Module:
    r"""
    ## Precision plan

    Whole-model bf16 autocast puts every convolution into bf16, but the parts
    of a ConvMixer layer do not all gain from it. The benchmark times each part
    alone (after `pip install -e ".[experiment]"`, `python benchmarks/train_speed.py
    --parts`; batch 128, $h = 256$, $16 \times 16$, channels_last, forward +
    backward unless noted). On a 2-core Intel Xeon with AVX-512 BF16 and AMX,
    in ms, fp32 against bf16 (`benchmarks/results/cpu_bf16_plan.json`):

    | part | fp32 | bf16 |
    |---|---:|---:|
    | point-wise $1 \times 1$ convolution, forward only | 29.0 | 3.2 |
    | point-wise $1 \times 1$ convolution | 71.2 | 21.0 |
    | depth-wise $5 \times 5$ convolution | 79.0 | 170.0 |
    | batch normalization + GELU | 50.7 | 36.7 |

    The point-wise convolution, a matrix multiplication that holds 91 % of the
    arithmetic, gains three to nine times, and the memory-bound normalization
    and activation gain too; the depth-wise convolution's bf16 kernel is more
    than twice as slow as fp32's. So the plan is: autocast to bf16 as for
    `'bf16'`, except the depth-wise convolutions, which run in fp32 with
    autocast switched off around them; their output goes back to bf16 so that
    the GELU and batch normalization after them stay in bf16. Weights and the
    optimizer stay fp32 throughout, as under any autocast.

    The exception is two hooks on each depth-wise convolution, so the paper's
    model file stays as it is and the module's parameters, `state_dict()` keys
    and checkpoints do not change. Outside autocast the hooks do nothing. The
    hook after the forward pass is called even when the forward raises, so
    autocast is never left switched off.

    For the whole training step the benchmark decides (`--compare fp32` times
    ours beside fp32, `--sweep` beside whole-model bf16 too). On the machine
    above the plan trained ConvMixer-256/8 at 113.8 images/s against 62.8 in
    fp32 and 62.4 in whole-model bf16, 1.52 times fp32 over pairs of turns
    (1.45 to 1.89), and 1.76 times end to end. So
    [`default_settings`](#default_settings) picks it on every CPU with bf16
    units; its losses stay within the bf16 tolerance of the equivalence test.
    """
    for module in model.modules():
        if is_depth_wise(module) and not hasattr(module, '_precision_plan_stack'):
            module._precision_plan_stack = []
            module.register_forward_pre_hook(_enter_fp32)
            module.register_forward_hook(_leave_fp32, always_call=True)
    return model


def make_grad_scaler(device: DeviceLike, precision: str) -> Optional['torch.amp.GradScaler']:
    r"""
    ## Gradient scaler for fp16

    float16 cannot represent gradients below about $6 \times 10^{-8}$. The
    scaler multiplies the loss by a large factor before the backward pass and
    divides the gradients by it before the optimizer step, skipping steps whose
    gradients overflowed. It is needed only for `'fp16'`; for other precisions
    this returns `None`, and the training step calls `backward()` and `step()`
    directly.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision != 'fp16':
        return None
    return torch.amp.GradScaler(_device(device).type)


def to_device_batch(images: torch.Tensor, labels: torch.Tensor, device: DeviceLike, *,
                    channels_last: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    ## Move a batch to the device

    `non_blocking=True` lets the host go on queuing work while the copy runs; it
    only overlaps when the source is in pinned memory (the data loader's
    `pin_memory=True`) and the target is a GPU, and is an ordinary copy otherwise.
    With `channels_last` a batch of images `[batch_size, channels, height, width]`
    is stored NHWC to match the model's weights.
    """
    device = _device(device)
    images = images.to(device, non_blocking=True)
    labels = labels.to(device, non_blocking=True)
    if channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels


# glibc's [`mallopt`](https://man7.org/linux/man-pages/man3/mallopt.3.html)
# parameters that decide what happens to freed memory
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
# Their values in a process that has run a while: `malloc` raises its mmap
# threshold to the largest block freed so far, up to 32 MiB, and the trim
# threshold to twice that; at most 65536 blocks are mmapped.
_MMAP_THRESHOLD_MAX, _DEFAULT_MMAP_MAX = 32 * 2 ** 20, 65536
_INT_MAX = 2 ** 31 - 1


@functools.lru_cache(maxsize=None)
def _glibc() -> Optional[ctypes.CDLL]:
    """The C library where it is glibc (Linux), else `None`."""
    if not sys.platform.startswith('linux') or platform.libc_ver()[0] != 'glibc':
        return None
    try:
        return ctypes.CDLL('libc.so.6')
    except OSError:
        return None


def keep_freed_memory(keep: bool = True) -> bool:
    """
    ## Keep freed memory for the next tensors (CPU)

    PyTorch asks the C library for the memory of every CPU tensor and gives it
    back when the tensor dies. A training step of ConvMixer-256/8 on a batch of
    128 CIFAR-10 images makes about a hundred activations and gradients of
    `[128, 256, 16, 16]` floats, 32 MiB each. glibc's `malloc` serves blocks that
    large with a fresh `mmap` from the kernel and returns them with `munmap`
    when they are freed (its threshold for doing so can grow to 32 MiB at most,
    just below our tensors). So every step the kernel hands out the same
    gigabytes again as new zeroed pages, one page fault for each 4 KiB on first
    touch: 8192 faults for each tensor, and the step pays for them inside
    every GELU, batch norm and convolution that writes a new tensor. On the
    2-core AVX2 machine of the Performance page, GELU of one such tensor took
    26 ms into fresh memory and 12 ms into reused memory, and the whole
    training step went from 23.2 to 39.6 images/s.

    With `keep=True` we tell glibc to serve every block from its heap
    (`M_MMAP_MAX` 0) and never to shrink the heap (`M_TRIM_THRESHOLD` as large
    as it goes): a freed block stays in the process and the next tensor of the
    same size takes it, pages already mapped. The cost is that the process
    holds on to its peak memory until it exits, which a training process
    reaches again every step anyway. Preloading another allocator such as
    jemalloc or tcmalloc has the same effect, but must be arranged before
    Python starts; this needs nothing installed.

    `keep=False` puts back the settings glibc reaches by itself in a process
    that has run a while (blocks of 32 MiB and more mmapped, the heap trimmed
    above 64 MiB of free space) and returns the free memory to the kernel
    (`malloc_trim`). The [benchmark](../../benchmarks/train_speed.html) does this
    after each turn of a path, so that the processes waiting for their turns
    do not all hold their peak memory at once.

    Returns whether the setting took effect: it does only on Linux with glibc,
    and changes nothing elsewhere (macOS, Windows and musl have allocators of
    their own). It is a setting of the whole process, and tensors on a GPU do
    not go through it (PyTorch caches GPU memory itself).
    """
    libc = _glibc()
    if libc is None:
        return False
    if keep:
        return bool(libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
    done = bool(libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                and libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                and libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX))
    libc.malloc_trim(0)
    return done


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
               grad_scaler: Optional['torch.amp.GradScaler'], images: torch.Tensor, labels: torch.Tensor,
               *, device: DeviceLike, precision: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    ## One training step

    Forward pass in the chosen precision, cross-entropy loss, backward pass and
    the optimizer step, the same for the experiment and the benchmark. The loss
    is computed in fp32 whatever the precision of the logits.

    It returns the loss and the logits as tensors on the device and reads
    nothing back to the host: calling `.item()` here would make the CPU wait for
    the GPU to finish every step before it could queue the next one.
    """
    with autocast(device, precision):
        logits = model(images)
        loss = nn.functional.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    if grad_scaler is not None:
        # fp16: scale the loss so small gradients survive, unscale before the step
        grad_scaler.scale(loss).backward()
        grad_scaler.step(optimizer)
        grad_scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach(), logits.detach()
