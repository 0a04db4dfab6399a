r"""
---
title: Precision of each part
summary: >
  The parts of one ConvMixer layer timed alone in fp32 and in bf16, to see
  which of them bf16 speeds up on this CPU and which it slows down.
nav_order: 8
---

# Precision of each part

Whole-model bf16 autocast can be slower than fp32 on a CPU that has bf16
units, because the parts of a layer do not all gain from it. This measurement
times each part of one layer alone, at the benchmark's sizes (by default the
recipe's: a batch of 128, $h = 256$ channels, $16 \times 16$ patches of a
CIFAR-10 image), channels_last, in fp32 and in bf16, in turns:

* the point-wise $1 \times 1$ convolution, forward only and forward + backward:
  a matrix multiplication, most of the step's arithmetic;
* the depth-wise $k \times k$ convolution, forward + backward: little
  arithmetic per value, and a kernel of its own for each precision;
* batch normalization and GELU, forward + backward: a few passes over memory,
  so half-size values should take about half the time.

"bf16" is what autocast makes of each part: its input in bf16, its weights
fp32 and cast by autocast where it casts them. The table is what the
[precision plan](../experiments/runner/speed.html#apply_precision_plan) is argued
from; after `python3 -m pip install -e ".[experiment]"`,
`python benchmarks/train_speed.py --parts` prints it for this CPU.
"""

import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

from benchmarks.timing import median_and_range

# The parts, by name: a function that builds the module for `h` channels and `k`.
PARTS: Dict[str, Callable[[int, int], nn.Module]] = {
    'point-wise 1x1 conv, forward only': lambda h, k: nn.Conv2d(h, h, 1),
    'point-wise 1x1 conv': lambda h, k: nn.Conv2d(h, h, 1),
    'depth-wise kxk conv': lambda h, k: nn.Conv2d(h, h, k, groups=h, padding=k // 2),
    'BatchNorm + GELU': lambda h, k: nn.Sequential(nn.GELU(), nn.BatchNorm2d(h)),
}


def part_runner(name: str, dtype: torch.dtype, *, batch: int, h: int, size: int,
                k: int) -> Callable[[], None]:
    """One call of the part `name` with its input in `dtype`, forward (and backward)."""
    torch.manual_seed(0)
    module = PARTS[name](h, k).to(memory_format=torch.channels_last)
    x = torch.randn(batch, h, size, size).to(dtype).contiguous(memory_format=torch.channels_last)
    backward = 'forward only' not in name
    x.requires_grad_(backward)
    bf16 = dtype == torch.bfloat16

    def run():
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            y = module(x)
        if backward:
            y.backward(torch.ones_like(y))
            module.zero_grad(set_to_none=True)
            x.grad = None
    return run


def measure_parts(*, batch: int = 128, h: int = 256, size: int = 16, k: int = 5, turns: int = 5,
                  calls: int = 3) -> List[Tuple[str, float, float]]:
    """
    For each part, the median milliseconds of a call in fp32 and in bf16:
    `turns` turns of `calls` calls each, fp32 and bf16 alternating, after one
    untimed call of each.
    """
    rows = []
    for name in PARTS:
        runners = {dtype: part_runner(name, dtype, batch=batch, h=h, size=size, k=k)
                   for dtype in (torch.float32, torch.bfloat16)}
        times = {dtype: [] for dtype in runners}
        for run in runners.values():
            run()
        for _ in range(turns):
            for dtype, run in runners.items():
                start = time.perf_counter()
                for _ in range(calls):
                    run()
                times[dtype].append(1000 * (time.perf_counter() - start) / calls)
        rows.append((name.replace('kxk', f'{k}x{k}'), median_and_range(times[torch.float32])[0],
                     median_and_range(times[torch.bfloat16])[0]))
    return rows


def parts_table(rows: List[Tuple[str, float, float]]) -> str:
    """The rows as a Markdown table, with how many times faster bf16 is."""
    lines = ['| part | fp32 ms | bf16 ms | fp32 / bf16 |', '|---|---:|---:|---:|']
    for name, fp32, bf16 in rows:
        lines.append(f'| {name} | {fp32:.1f} | {bf16:.1f} | {fp32 / bf16:.2f}x |')
    return '\n'.join(lines)
