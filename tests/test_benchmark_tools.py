"""
The speed benchmark's measuring tools: the FLOP count of a training step, the
CPU peak estimate from `/proc/cpuinfo`, and timing in turns.
"""

import pytest
import torch

from benchmarks.flops import count_training_flops, operator_group, peak_gflops
from benchmarks.timing import median_and_range, ratios_per_pair, time_in_turns
from labml_convmixer.model import convmixer


@pytest.mark.parametrize('h,d,k,p,size', [(256, 8, 5, 2, 32), (64, 3, 4, 4, 24)])
def test_flop_count_matches_the_formulas(h, d, k, p, size):
    n = (size // p) ** 2  # patches
    forward = {'patch embedding': 2 * n * h * 3 * p * p, 'depth-wise': d * 2 * n * h * k * k,
               'point-wise': d * 2 * n * h * h, 'head': 2 * h * 10}
    # Backward: the gradients of input and weights, except no input gradient for the images
    expected = {name: f * (2 if name == 'patch embedding' else 3) for name, f in forward.items()}
    counted = count_training_flops(convmixer(h, d, k, p, n_classes=10), (3, size, size))
    assert counted == pytest.approx(expected)


def test_convmixer_256_8_is_mostly_point_wise():
    counted = count_training_flops(convmixer(256, 8, 5, 2, n_classes=10))
    total = sum(counted.values())
    assert total == pytest.approx(0.887e9, rel=1e-3)
    assert 0.90 < counted['point-wise'] / total < 0.91


CPUINFO = '''processor\t: 0
model name\t: Some CPU
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse2 avx avx2 fma {extra}
'''


@pytest.mark.parametrize('extra,fp32,bf16', [
    ('', 32, 32),  # AVX2: bf16 is converted to fp32, no faster
    ('avx512f avx512bw', 64, 64),
    ('avx512f avx512_bf16', 64, 128),
    ('avx512f avx512_bf16 amx_tile amx_bf16', 64, 1024),
])
def test_peak_estimate_from_cpuinfo(extra, fp32, bf16):
    peak = peak_gflops(2, CPUINFO.format(extra=extra))
    assert (peak.fp32_per_cycle, peak.bf16_per_cycle) == (fp32, bf16)
    assert peak.fp32_gflops == pytest.approx(2 * 2.0 * fp32)
    assert peak_gflops(2, 'no such file') is None


def test_operator_groups():
    assert operator_group('aten::convolution_backward') == 'convolution backward'
    assert operator_group('aten::mkldnn_convolution') == 'convolution forward'
    assert operator_group('aten::native_batch_norm_backward') == 'batch norm, GELU, add'
    assert operator_group('Optimizer.step#AdamW.step') == 'optimizer'


def test_time_in_turns_interleaves_and_times_every_path_long_enough():
    calls = []

    def runner(name, images):
        def run():
            calls.append(name)
            # Busy work of a known size, on the CPU
            torch.ones(64, 64) @ torch.ones(64, 64)
            return images
        return run

    turns = time_in_turns({'a': runner('a', 4), 'b': runner('b', 2)}, torch.device('cpu'), warmup=1,
                          turn_s=0.01, total_s=0.05, min_turns=3, log=lambda line: None)
    # Warm-up first, then whole turns alternate: a's calls, then b's, then a's ...
    assert calls[:2] == ['a', 'b']
    runs = [name for i, name in enumerate(calls[2:]) if i == 0 or calls[2 + i - 1] != name]
    assert runs == ['a', 'b'] * (len(runs) // 2) and len(runs) >= 6
    assert all(t >= 0.05 for t in turns.timed_s.values())
    assert len(turns.rates['a']) == len(turns.rates['b']) >= 3
    assert all(rate > 0 for rate in turns.rates['a'] + turns.rates['b'])


def test_each_turn_is_printed_at_once(monkeypatch):
    printed = []
    monkeypatch.setattr('builtins.print', lambda *args, **kwargs: printed.append((args, kwargs)))
    time_in_turns({'a': lambda: 1, 'b': lambda: 2}, torch.device('cpu'), warmup=1, turn_s=0.001,
                  total_s=0.002, min_turns=2)
    assert len(printed) >= 2
    # Flushed, so progress shows while a long benchmark writes to a file
    assert all(kwargs.get('flush') for _, kwargs in printed)
    assert printed[0][0][0].startswith('  turn 1: a ') and 'b ' in printed[0][0][0]


def test_ratios_are_taken_per_pair():
    assert ratios_per_pair([10, 30, 20], [5, 10, 10]) == [2, 3, 2]
    assert median_and_range([2, 3, 2]) == (2, 2, 3)


def test_each_turn_is_framed_by_its_runners_hooks():
    events = []

    def runner(name):
        def run():
            events.append(('run', name))
            return 1
        return run

    hooks = {phase: {name: (lambda phase=phase, name=name: events.append((phase, name))) for name in 'ab'}
             for phase in ('before', 'after')}
    time_in_turns({'a': runner('a'), 'b': runner('b')}, torch.device('cpu'), warmup=1, turn_s=0.001,
                  total_s=0.002, min_turns=2, before_turn=hooks['before'], after_turn=hooks['after'],
                  log=lambda line: None)
    # Every stretch of a runner's calls (warm-up included) sits between its own
    # before and after, and no other runner's hook runs inside it
    current = None
    for phase, name in events:
        if phase == 'before':
            assert current is None
            current = name
        elif phase == 'run':
            assert current == name
        else:
            assert current == name
            current = None
    assert current is None
    assert sum(1 for e in events if e == ('before', 'a')) == sum(1 for e in events if e == ('after', 'a')) >= 3


class _Counter:
    """A path for the process tests: counts its calls, in its own process."""

    def __init__(self, images: int, fail: str = ''):
        if fail == 'build':
            raise ValueError("cannot build this path")
        self.images, self.calls, self.fail = images, 0, fail

    def run(self) -> int:
        self.calls += 1
        return self.images

    def pid(self) -> int:
        import os
        return os.getpid()

    def calls_so_far(self) -> int:
        return self.calls

    def broken(self):
        raise KeyError('no such thing')


def test_a_path_runs_in_a_process_of_its_own():
    import multiprocessing
    import os
    from benchmarks.path_process import PathProcess
    path = PathProcess('counter', _Counter, 3)
    try:
        assert path() == 3 and path() == 3
        # The first call happened while building; state lives in the child
        assert path.call('calls_so_far') == 3 and path.first_call_s >= 0
        assert path.call('pid') != os.getpid()
        # An error in the child comes back as one line naming the path, and the path still serves
        with pytest.raises(RuntimeError, match="counter: KeyError"):
            path.call('broken')
        assert path() == 3
    finally:
        path.close()
    assert not multiprocessing.active_children()


def test_a_path_that_cannot_be_built_says_why():
    from benchmarks.path_process import PathProcess
    with pytest.raises(RuntimeError, match="broken path: ValueError: cannot build this path"):
        PathProcess('broken path', _Counter, 3, 'build')
