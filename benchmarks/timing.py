"""
---
title: Timing in turns
summary: >
  How the speed benchmark times two training paths on a shared machine so
  that their ratio holds from run to run: long timed turns, the paths
  interleaved, medians with their spread, and a ratio per pair of turns.
nav_order: 5
---

# Timing in turns

A 2-core machine shared with other work does not run at one speed: the same
training step can take twice as long a minute later. Three rules make the
benchmark's comparison hold anyway.

1. **Long turns.** Each timed turn runs a path for at least `turn_s` seconds
   (6 by default): a training step on a CPU takes seconds, and one step
   alone is mostly noise.
2. **Interleaved.** The paths take turns, baseline, ours, baseline, ours, ...
   so that a slow minute slows both alike. Each path gets at least `total_s`
   seconds of timed work (30 by default) and at least three turns.
3. **Ratios per pair.** The speed-up is computed for each pair of neighbouring
   turns, ours over baseline, and reported as the median of those ratios with
   their range: a slow minute changes both members of a pair, and cancels in
   their ratio. The absolute images/s are reported as the median of the
   turns, with their range, to judge how busy the machine was.

Each path runs in [a process of its own](path_process.html), so that a setting
of the whole process that one of them makes cannot change the other's speed.
"""

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch


def synchronize(device: torch.device):
    # GPU work is asynchronous: wait for it before reading the clock.
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@dataclass
class Turns:
    """What `time_in_turns` measured for each path, by name."""
    rates: Dict[str, List[float]]  # images/s of each timed turn, in the order of the turns
    warmup_s: Dict[str, float]  # seconds of the untimed calls (and compilation)
    timed_s: Dict[str, float]  # seconds of timed work in all


def time_in_turns(runners: Dict[str, Callable[[], int]], device: torch.device, *, warmup: int = 1,
                  turn_s: float = 6.0, total_s: float = 30.0, min_turns: int = 3,
                  before_turn: Optional[Dict[str, Callable[[], None]]] = None,
                  after_turn: Optional[Dict[str, Callable[[], None]]] = None,
                  log: Optional[Callable[[str], None]] = None) -> Turns:
    """
    Each runner does a unit of work (a training step, an epoch) and returns the
    number of images it processed. After `warmup` untimed calls each, the
    runners take turns: in a turn a runner is called until `turn_s` seconds
    have passed; turns go on until every runner has `total_s` seconds of timed
    work and `min_turns` turns. `before_turn[name]` and `after_turn[name]`,
    where given, run untimed before and after each turn (and the warm-up) of
    that runner. Each turn's rates go to `log`, by default printed at once
    (flushed, so that progress shows when the output goes to a file).
    """
    log = log or (lambda line: print(line, flush=True))
    before_turn, after_turn = before_turn or {}, after_turn or {}
    no_setup = lambda: None  # noqa: E731
    warmup_s = {}
    for name, run in runners.items():
        before_turn.get(name, no_setup)()
        synchronize(device)
        start = time.perf_counter()
        for _ in range(warmup):
            run()
        synchronize(device)
        warmup_s[name] = time.perf_counter() - start
        after_turn.get(name, no_setup)()
    rates = {name: [] for name in runners}
    timed = {name: 0.0 for name in runners}
    while min(timed.values()) < total_s or min(len(r) for r in rates.values()) < min_turns:
        for name, run in runners.items():
            before_turn.get(name, no_setup)()
            synchronize(device)
            start, images = time.perf_counter(), 0
            while True:
                images += run()
                synchronize(device)
                elapsed = time.perf_counter() - start
                if elapsed >= turn_s:
                    break
            rates[name].append(images / elapsed)
            timed[name] += elapsed
            after_turn.get(name, no_setup)()
        log('  turn ' + str(len(rates[next(iter(rates))])) + ': ' +
            ', '.join(f"{name} {r[-1]:.1f}" for name, r in rates.items()) + ' images/s')
    return Turns(rates, warmup_s, timed)


def ratios_per_pair(ours: List[float], baseline: List[float]) -> List[float]:
    """Ours over baseline for each pair of turns taken one after the other."""
    return [o / b for o, b in zip(ours, baseline)]


def median_and_range(values: List[float]) -> Tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)
