r"""
---
title: Where the time goes, against the limit
summary: >
  The floating-point operations of one ConvMixer training step, counted by
  layer type; the CPU's peak rate, estimated from its instruction set and
  clock; and the share of that peak the benchmark's paths reach.
nav_order: 4
---

# Where the time goes, against the limit

Images per second say which path is faster, not how far either is from what
the machine could do. For that we need two more numbers: the work in a
training step, and the rate at which this CPU can do such work at best.

**The work.** Nearly all the arithmetic of ConvMixer is in its convolutions.
For a convolution whose output has $N$ positions and $c_{out}$ channels, each
position of each output channel is a dot product of length
$\frac{c_{in}}{g} k^2$ ($g$ groups, kernel $k$): the forward pass costs
$2 N c_{out} \frac{c_{in}}{g} k^2$ floating-point operations (a multiply and an
add each). The backward pass computes two such products, the gradient of the
input and that of the weights, so twice as much; the first layer needs no
gradient of its input (the images), so only once as much. For ConvMixer-256/8
on CIFAR-10 ($h = 256$, $k = 5$, $p = 2$: $N = 16 \times 16$ patches), per
image:

| layer type | forward | forward + backward | share |
|---|---:|---:|---:|
| patch embedding, $2 N h \cdot 3 p^2$ | 1.6 M | 3.1 M | 0.4 % |
| depth-wise, $d \cdot 2 N h k^2$ | 26 M | 79 M | 8.9 % |
| point-wise, $d \cdot 2 N h^2$ | 268 M | 805 M | 90.7 % |
| head | 5 k | 15 k | 0 % |
| **total** | **296 M** | **0.89 G** | |

[`count_training_flops`](#count_training_flops) counts them from the model
itself, with forward hooks, so the table holds for any size. Batch
normalization, GELU and the residual add are a few operations per element:
they are not counted, and they are limited by memory traffic, not by
arithmetic. (PyTorch's own `FlopCounterMode` counts the backward pass of a
grouped convolution as if it were dense: 842 M for one depth-wise layer's
backward instead of 6.6 M. We count ourselves.)

**The limit.** A CPU core does at most one fused multiply-add per vector lane
per FMA unit per cycle. With two FMA units, as in most x86 server cores, that
is 32 floating-point operations a cycle with AVX2 (8 fp32 lanes) and 64 with
AVX-512 (16 lanes). bf16 is faster only with instructions made for it: AVX-512
BF16's dot products double the fp32 rate, and AMX tiles reach 1,024
operations a cycle. Without them, bf16 is converted to fp32 to be computed,
and gains nothing. [`peak_gflops`](#peak_gflops) multiplies the rate of the
best instructions the CPU reports by its cores and clock. It is an *estimate*:
clocks vary with load and temperature, and a virtual machine may report a
nominal clock.
"""

import re
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import nn

from labml_convmixer.model import DepthWiseConv2d


# ## Counting the work

def layer_type(name: str, module: nn.Module) -> Optional[str]:
    """Which row of the table a layer of the model belongs to, by its class and name."""
    if isinstance(module, DepthWiseConv2d):
        return 'depth-wise'
    if isinstance(module, nn.Conv2d):
        return 'patch embedding' if name.startswith('patch_emb') else 'point-wise'
    if isinstance(module, nn.Linear):
        return 'head'
    return None


def count_training_flops(model: nn.Module, image_shape=(3, 32, 32)) -> Dict[str, float]:
    """
    Floating-point operations per image of one training step (forward and
    backward), by layer type, from one forward pass of a single image with
    hooks on every convolution and linear layer of the package's `ConvMixer`.
    """
    counts: Dict[str, float] = {}
    seen = []  # layers already run: the first one sees the images

    def hook(kind):
        def count(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                dot_product = module.in_channels // module.groups * kh * kw
            else:
                dot_product = module.in_features
            forward = 2 * output.numel() * dot_product
            # Gradients of the weights, and of the input except for the images
            backward = 2 * forward if seen else forward
            seen.append(module)
            counts[kind] = counts.get(kind, 0.0) + forward + backward
        return count

    hooks = [module.register_forward_hook(hook(layer_type(name, module)))
             for name, module in model.named_modules() if layer_type(name, module)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parameter = next(model.parameters())
            model(torch.zeros(1, *image_shape, device=parameter.device, dtype=parameter.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return counts


# ## The machine's limit

@dataclass
class CpuPeak:
    """The estimate and what it is made of."""
    cores: int
    ghz: float
    fp32_per_cycle: int  # floating-point operations per cycle per core
    bf16_per_cycle: int
    isa: str  # the instructions the rates come from

    @property
    def fp32_gflops(self) -> float:
        return self.cores * self.ghz * self.fp32_per_cycle

    @property
    def bf16_gflops(self) -> float:
        return self.cores * self.ghz * self.bf16_per_cycle


def cpu_flags(cpuinfo: str) -> set:
    """The instruction-set flags of the first processor in `/proc/cpuinfo`."""
    found = re.search(r'^flags\s*:(.*)$', cpuinfo, re.M)
    return set(found.group(1).split()) if found else set()


def peak_gflops(cores: int, cpuinfo: str) -> Optional[CpuPeak]:
    """
    The estimated peak of `cores` cores, from the flags and clock in the text of
    `/proc/cpuinfo`; `None` where it does not say (not Linux, not x86).
    """
    flags = cpu_flags(cpuinfo)
    clock = re.search(r'^cpu MHz\s*:\s*([\d.]+)', cpuinfo, re.M)
    if not flags or not clock:
        return None
    if 'avx512f' in flags:
        fp32, isa = 64, 'AVX-512'
    elif 'avx2' in flags and 'fma' in flags:
        fp32, isa = 32, 'AVX2 + FMA'
    else:
        fp32, isa = 8, 'SSE'
    if 'amx_bf16' in flags:
        bf16, isa = 1024, isa + ', AMX-BF16'
    elif 'avx512_bf16' in flags:
        bf16, isa = 2 * fp32, isa + ', AVX-512 BF16'
    else:
        bf16 = fp32
    return CpuPeak(cores, float(clock.group(1)) / 1000, fp32, bf16, isa)


def read_cpuinfo() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return f.read()
    except OSError:
        return ''


# ## Operators by group
#
# The profile's operators, grouped as the Performance page shows them, so that
# the baseline's and our path's time can be compared line by line: compiled
# kernels carry generated names, eager ones aten names.

OPERATOR_GROUPS = (
    ('convolution backward', ('convolution_backward', 'conv2d_backward', 'conv_backward')),
    ('convolution forward', ('convolution', 'conv2d', 'mkldnn_conv')),
    ('optimizer', ('adam', 'optimizer', '_foreach', 'fused')),
    ('layout copies', ('copy_', 'clone', 'contiguous', 'to_dense', 'reorder')),
    ('batch norm, GELU, add', ('batch_norm', 'gelu', 'add', 'cpp_fused', 'graph', 'triton', 'compiled',
                               'native_layer', 'mul', 'sum', 'mean', 'var')),
)


def operator_group(name: str) -> str:
    name = name.lower()
    for group, keys in OPERATOR_GROUPS:
        if any(key in name for key in keys):
            return group
    return 'other'
