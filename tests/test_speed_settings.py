"""
Tests of the helpers in `experiments/runner/speed.py` and a short run of the speed
benchmark, all on CPU.
"""

import json

import pytest
import torch
from torch import nn

from experiments.runner import speed
from labml_convmixer.model import convmixer


def test_prepare_model_layout_and_names():
    model = convmixer(16, 1, kernel_size=3, patch_size=2, n_classes=10)
    names = list(model.state_dict())
    prepared = speed.prepare_model(model, 'cpu', channels_last=True, compile=False)
    assert list(prepared.state_dict()) == names
    weight = prepared.patch_emb.conv.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    plain = speed.prepare_model(convmixer(16, 1, 3, 2, 10), torch.device('cpu'), channels_last=False,
                                compile=False)
    assert plain.patch_emb.conv.weight.is_contiguous()


def test_make_optimizer_fused_switch():
    params = [nn.Parameter(torch.randn(4, 4))]
    fused = speed.make_optimizer(params, lr=0.1, weight_decay=0.01, device='cpu', fused=True)
    plain = speed.make_optimizer(params, lr=0.1, weight_decay=0.01, device='cpu', fused=False)
    assert isinstance(fused, torch.optim.AdamW)
    assert fused.defaults['fused'] is True
    assert not plain.defaults['fused']
    assert fused.defaults['lr'] == 0.1 and fused.defaults['weight_decay'] == 0.01


@pytest.mark.filterwarnings('ignore:bf16 on this CPU')
def test_autocast_and_scaler():
    x = torch.randn(2, 4)
    layer = nn.Linear(4, 4)
    with speed.autocast('cpu', 'fp32'):
        assert layer(x).dtype == torch.float32
    with speed.autocast('cpu', 'bf16'):
        assert layer(x).dtype == torch.bfloat16
    assert speed.make_grad_scaler('cpu', 'fp32') is None
    assert speed.make_grad_scaler('cpu', 'bf16') is None
    assert isinstance(speed.make_grad_scaler('cpu', 'fp16'), torch.amp.GradScaler)
    with pytest.raises(ValueError, match='precision'):
        speed.autocast('cpu', 'fp64')


def test_to_device_batch():
    images = torch.randn(4, 3, 8, 8)
    labels = torch.arange(4)
    a, b = speed.to_device_batch(images, labels, 'cpu', channels_last=True)
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, images) and torch.equal(b, labels)
    a, _ = speed.to_device_batch(images, labels, 'cpu', channels_last=False)
    assert a.is_contiguous()


def test_default_settings():
    cpu = speed.default_settings('cpu')
    # fp32, or the precision plan on a CPU with bf16 units (both cases monkeypatched below)
    assert cpu.precision == ('bf16-plan' if speed.cpu_has_fast_bf16() else 'fp32')
    assert cpu.channels_last and cpu.fused
    # Measured: eager beats compiled on CPU once freed memory is kept
    assert not cpu.compile and cpu.keep_memory
    other = speed.default_settings('meta')
    assert not other.compile and other.precision == 'fp32' and not other.keep_memory
    assert not speed.default_settings('cuda').keep_memory
    # The data pipeline: whole batches augmented between steps on a CPU (loader workers
    # would compete with the step for the cores) and on a GPU (they could not feed it)
    assert cpu.augment == 'batched' and speed.default_settings('cuda').augment == 'batched'
    assert other.augment == 'torchvision'


def test_benchmark_runs_and_reports(tmp_path, capsys):
    # A tiny, uncompiled run: every measurement is there and positive, with the ratios.
    from benchmarks.train_speed import main
    out = tmp_path / 'results.json'
    main(['--device', 'cpu', '--d-model', '16', '--n-layers', '1', '--batch-size', '8', '--images', '16',
          '--turn-seconds', '0.05', '--seconds', '0.1', '--steps', '1', '--warmup', '1', '--no-compile',
          '--workers', '0', '--json', str(out)])
    printed = capsys.readouterr().out
    assert 'ratios ours / baseline' in printed and 'machine:' in printed and 'GFLOP' in printed
    report = json.loads(out.read_text())
    kinds = sorted((r['kind'], r['name']) for r in report['results'])
    assert kinds == [('e2e', 'baseline'), ('e2e', 'ours'), ('e2e', 'ours, per-image augment'),
                     ('model', 'baseline'), ('model', 'ours'),
                     ('pipeline', 'baseline'), ('pipeline', 'ours'), ('pipeline', 'ours, per-image augment')]
    # At least three turns each, in turns, and a ratio for every pair of them
    model = {r['name']: r for r in report['results'] if r['kind'] == 'model'}
    assert len(model['ours']['repeats']) == len(model['baseline']['repeats']) >= 3
    ratio = report['ratios']['model: ours']
    assert len(ratio['pairs']) == len(model['ours']['repeats'])
    assert ratio['low'] <= ratio['median'] <= ratio['high']
    # The arithmetic of the step, and the share of the peak each path reaches
    assert sum(report['flops_per_image'].values()) > 0
    assert set(report['efficiency']) == {'model: baseline', 'model: ours'}
    assert set(report['profile']) == {'baseline', 'ours'}
    assert 'isa' in report['machine'] and report['machine']['torch_cpu_capability']
    # On CPU our end-to-end path is the experiment's default there: batches augmented
    # between steps, with freed memory kept; the baseline records no settings of ours
    by_name = {(r['kind'], r['name']): r for r in report['results']}
    assert by_name[('e2e', 'ours')]['settings']['augment'] == 'batched'
    assert by_name[('e2e', 'ours, per-image augment')]['settings']['augment'] == 'torchvision'
    assert by_name[('model', 'ours')]['settings']['keep_memory'] is True
    assert by_name[('model', 'baseline')]['settings'] == {}
    assert set(report['ratios']) == {'model: ours', 'e2e: ours', 'e2e: ours, per-image augment'}
    for r in report['results']:
        assert r['images_per_s'] > 0 and len(r['repeats']) >= 1
    assert report['machine']['cpu_cores'] >= 1


def test_benchmark_takes_its_pipeline_from_the_device_defaults(tmp_path, monkeypatch):
    # With per-image transforms as the device's default our end-to-end path uses
    # them, and the batched pipeline gets the extra row to compare with.
    from dataclasses import replace
    from benchmarks import benchmark_cli, train_speed
    monkeypatch.setattr(benchmark_cli, 'default_settings',
                        lambda device: replace(speed.default_settings(device), augment='torchvision'))
    out = tmp_path / 'results.json'
    small = ['--device', 'cpu', '--d-model', '8', '--n-layers', '1', '--batch-size', '8', '--images', '16',
             '--turn-seconds', '0.05', '--seconds', '0.1', '--no-compile', '--workers', '0',
             '--skip', 'model', '--skip', 'pipeline', '--json', str(out)]
    train_speed.main(small)
    results = json.loads(out.read_text())['results']
    assert [r['name'] for r in results] == ['baseline', 'ours', 'ours, batched augment']
    assert [r['settings']['augment'] for r in results[1:]] == ['torchvision', 'batched']
    # `--our-augment` overrides the default
    train_speed.main(small + ['--our-augment', 'batched'])
    results = json.loads(out.read_text())['results']
    assert [r['name'] for r in results] == ['baseline', 'ours', 'ours, per-image augment']
    assert results[1]['settings']['augment'] == 'batched'


def test_bf16_on_a_cpu_without_bf16_instructions_warns(monkeypatch):
    monkeypatch.setattr(speed, 'cpu_has_fast_bf16', lambda: False)
    with pytest.warns(UserWarning, match='slower than fp32'):
        speed.autocast('cpu', 'bf16')
    monkeypatch.setattr(speed, 'cpu_has_fast_bf16', lambda: True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        speed.autocast('cpu', 'bf16')
        speed.autocast('cpu', 'fp32')


def test_benchmark_plot_is_the_same_file_for_the_same_numbers(tmp_path):
    # The Performance page's chart is rebuilt from the JSON report: the same
    # numbers must give the same SVG, so that a rebuild changes nothing
    from benchmarks.speed_report import Result, plot
    results = [Result('baseline', 'model', 10.0, [9.0, 11.0], 1.0, {}),
               Result('ours', 'model', 15.0, [14.0, 16.0], 1.0, {})]
    machine = {'cpu': 'test CPU', 'cpu_cores': 2, 'torch': torch.__version__}
    plot(results, [], machine, tmp_path / 'a.svg')
    plot(results, [], machine, tmp_path / 'b.svg')
    assert (tmp_path / 'a.svg').read_bytes() == (tmp_path / 'b.svg').read_bytes()
    assert b'Date' not in (tmp_path / 'a.svg').read_bytes()


def test_time_chart_shows_each_path_and_the_peak(tmp_path):
    from benchmarks.speed_report import plot_time
    report = {'profile': {'baseline': {'convolution backward': 0.03, 'batch norm, GELU, add': 0.02},
                          'ours': {'convolution backward': 0.015, 'batch norm, GELU, add': 0.02}},
              'peak': {'fp32_gflops': 100.0}, 'flops_per_image': {'point-wise': 0.5e9}}
    plot_time(report, tmp_path / 'time.svg')
    svg = (tmp_path / 'time.svg').read_text()
    # The totals per image, and the time the arithmetic takes at the peak: 0.5 GFLOP at 100 GFLOP/s
    assert '50.0 ms' in svg and '35.0 ms' in svg and 'fp32 peak: 5.0 ms' in svg


def _page_faults_of_large_tensors(rounds: int = 3) -> int:
    """Minor page faults while a 40 MiB tensor and two results of it are made and freed."""
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        a = torch.ones(40 * 2 ** 20 // 4)
        b = torch.nn.functional.gelu(a * 2)
        assert float(b[0]) > 1.9
        del a, b
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_keep_freed_memory_reuses_pages_and_can_give_them_back():
    # 40 MiB is above the largest threshold up to which glibc keeps freed blocks
    # by itself, so by default each round maps the tensors' pages anew.
    import platform
    import resource
    if platform.libc_ver()[0] != 'glibc':
        # Other C libraries: nothing to set, and it says so
        assert not speed.keep_freed_memory()
        return
    pages = 40 * 2 ** 20 // resource.getpagesize()
    try:
        assert speed.keep_freed_memory(False)
        # 3 rounds of 3 tensors: by default about 9 tensors' worth of new pages
        default = _page_faults_of_large_tensors()
        assert default >= 3 * pages
        assert speed.keep_freed_memory(True)
        _page_faults_of_large_tensors(3)  # the heap grows to what the rounds need
        # then the same tensors take the same, already mapped memory. Alone in a
        # process that is no new page at all; after hundreds of other tests,
        # whose leftover allocations can land between the freed blocks, we have
        # seen one tensor's worth. At most a third of the default either way.
        assert _page_faults_of_large_tensors() <= default / 3
        # Put back (as the benchmark does for the baseline): the memory goes back to
        # the kernel, and the next tensors map new pages again
        assert speed.keep_freed_memory(False)
        assert _page_faults_of_large_tensors() >= pages
    finally:
        speed.keep_freed_memory(False)


def test_trainer_keeps_freed_memory_when_asked(monkeypatch):
    # `prepare` reads only plain settings, so a namespace stands in for the configs
    from types import SimpleNamespace
    from experiments.runner.trainer import TrainerConfigs
    calls = []
    monkeypatch.setattr(speed, 'keep_freed_memory', lambda keep=True: calls.append(keep) or True)
    configs = SimpleNamespace(sync_bn=False, keep_memory=True, device=torch.device('cpu'), channels_last=False,
                              precision='fp32',
                              compile=False, seed=0, dist_info=SimpleNamespace(enabled=False, rank=0))
    model = TrainerConfigs.prepare(configs, torch.nn.Linear(2, 2))
    assert calls == [True] and isinstance(model, torch.nn.Linear)
    configs.keep_memory = False
    TrainerConfigs.prepare(configs, torch.nn.Linear(2, 2))
    assert calls == [True]


def test_benchmark_sweep_times_each_variant_in_turns(tmp_path, monkeypatch):
    # The sweep's own rows around the variants: the reference-style loop with and
    # without kept memory, and our defaults with a thread fewer; a variant this
    # machine cannot run is reported and left out.
    from benchmarks import train_speed
    eager = speed.SpeedSettings(channels_last=True, compile=False, fused=True, precision='fp32')
    monkeypatch.setattr(train_speed, 'sweep_variants', lambda device, base, kernels: [
        ('eager channels_last', eager, None), ('impossible', speed.SpeedSettings(
            channels_last=True, compile=False, fused=True, precision='fp8'), None)])
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 2)
    out = tmp_path / 'results.json'
    train_speed.main(['--device', 'cpu', '--d-model', '8', '--n-layers', '1', '--batch-size', '4',
                      '--turn-seconds', '0.05', '--seconds', '0.1', '--sweep', '--skip', 'model', '--skip', 'e2e',
                      '--skip', 'pipeline', '--json', str(out)])
    sweep = {r['name']: r for r in json.loads(out.read_text())['results'] if r['kind'] == 'sweep'}
    assert list(sweep) == ['baseline loop', 'baseline loop, kept memory', 'eager channels_last',
                           'defaults, 1 thread']
    assert sweep['baseline loop']['settings'] == {}
    assert sweep['baseline loop, kept memory']['settings'] == {'keep_memory': True}
    assert sweep['defaults, 1 thread']['settings']['threads'] == 1
    assert all(len(r['repeats']) >= 3 and r['images_per_s'] > 0 for r in sweep.values())


@pytest.mark.parametrize('argv,message', [
    (['--batch-size', '0'], '--batch-size must be positive, got 0'),
    (['--seconds', '-1'], '--seconds must be positive, got -1.0'),
])
def test_benchmark_refuses_sizes_that_cannot_be_measured(argv, message, capsys):
    from benchmarks.train_speed import main
    with pytest.raises(SystemExit) as stop:
        main(['--device', 'cpu'] + argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_benchmark_sizes_default_per_device():
    from benchmarks.benchmark_cli import device_and_sizes, parse_args
    parser, args = parse_args(['--device', 'cpu'])
    assert device_and_sizes(parser, args).type == 'cpu'
    assert (args.batch_size, args.steps, args.warmup, args.images) == (128, 1, 2, 512)
    parser, args = parse_args(['--device', 'cpu', '--batch-size', '32'])
    device_and_sizes(parser, args)
    assert args.batch_size == 32


@pytest.mark.filterwarnings('ignore:bf16')
def test_precision_plan_runs_depth_wise_in_fp32_and_the_rest_in_bf16():
    # The dtypes each convolution computes in, read by hooks that run next to the
    # plan's own: the depth-wise convolution's input and raw output are fp32, the
    # point-wise convolution's and the norms' are bf16, in the forward and the backward
    model = convmixer(16, 1, kernel_size=5, patch_size=2, n_classes=10)
    names = list(model.state_dict())
    model = speed.prepare_model(model, 'cpu', channels_last=True, compile=False, precision='bf16-plan')
    assert list(model.state_dict()) == names
    layer = model.conv_mixer_layers[0]
    seen = {}

    def record(name):
        def hook(module, args, output):
            seen[name] = (args[0].dtype, output.dtype, torch.is_autocast_enabled('cpu'))
            if output.requires_grad:
                # the gradient that the convolution's own backward receives
                output.register_hook(lambda grad: seen.__setitem__(name + ' grad', grad.dtype))
        return hook

    # prepend: before the plan's hook casts the output back to bf16
    layer.depth_wise_conv.register_forward_hook(record('depth-wise'), prepend=True)
    layer.point_wise_conv.register_forward_hook(record('point-wise'))
    layer.norm1.register_forward_hook(record('norm1'))
    images = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    with speed.autocast('cpu', 'bf16-plan'):
        loss = model(images).float().sum()
        assert torch.is_autocast_enabled('cpu')
    loss.backward()
    assert seen['depth-wise'] == (torch.float32, torch.float32, False)
    assert seen['point-wise'] == (torch.bfloat16, torch.bfloat16, True)
    assert seen['norm1'][:2] == (torch.bfloat16, torch.bfloat16)
    assert seen['depth-wise grad'] == torch.float32 and seen['point-wise grad'] == torch.bfloat16
    assert layer.depth_wise_conv.weight.grad.dtype == torch.float32
    # Outside autocast the plan changes nothing: all fp32
    seen.clear()
    model(images)
    assert seen['depth-wise'][:2] == seen['point-wise'][:2] == (torch.float32, torch.float32)
    # An exception inside the depth-wise convolution leaves autocast switched on
    with speed.autocast('cpu', 'bf16-plan'):
        with pytest.raises(RuntimeError):
            layer.depth_wise_conv(torch.randn(2, 3, 8, 8))
        assert torch.is_autocast_enabled('cpu')


@pytest.mark.parametrize('fast_bf16', [False, True])
def test_cpu_default_precision_follows_the_measurement(monkeypatch, fast_bf16):
    # With bf16 units the CPU default is the precision plan, measured faster than fp32
    # there; without them it stays fp32, and bf16 or the plan warns
    monkeypatch.setattr(speed, 'cpu_has_fast_bf16', lambda: fast_bf16)
    assert speed.default_settings('cpu').precision == ('bf16-plan' if fast_bf16 else 'fp32')
    assert speed.default_settings('cpu').channels_last
    if not fast_bf16:
        with pytest.warns(UserWarning, match='bf16-plan on this CPU'):
            speed.autocast('cpu', 'bf16-plan')


def test_benchmark_prints_the_parts_and_sweeps_the_plan(tmp_path, capsys):
    from benchmarks import train_speed
    names = [name for name, _, _ in train_speed.sweep_variants(torch.device('cpu'), None, [5])]
    assert {'eager channels_last fused, kept memory', 'eager bf16, kept memory',
            'eager bf16 plan, kept memory'} <= set(names)
    out = tmp_path / 'results.json'
    train_speed.main(['--device', 'cpu', '--d-model', '8', '--n-layers', '1', '--batch-size', '4',
                      '--parts', '--skip', 'model', '--skip', 'e2e', '--skip', 'pipeline', '--json', str(out)])
    printed = capsys.readouterr().out
    assert '| depth-wise 5x5 conv |' in printed and '| BatchNorm + GELU |' in printed
    parts = json.loads(out.read_text())['parts']
    assert [p['part'] for p in parts] == ['point-wise 1x1 conv, forward only', 'point-wise 1x1 conv',
                                          'depth-wise 5x5 conv', 'BatchNorm + GELU']
    assert all(p['fp32_ms'] > 0 and p['bf16_ms'] > 0 for p in parts)


@pytest.mark.filterwarnings('ignore:bf16')
def test_benchmark_compares_other_precisions_in_the_same_turns(tmp_path):
    # `--compare fp32`: ours in fp32 beside ours, model only and end to end, with its ratio
    from benchmarks.train_speed import main
    out = tmp_path / 'results.json'
    main(['--device', 'cpu', '--d-model', '16', '--n-layers', '1', '--batch-size', '8', '--images', '16',
          '--turn-seconds', '0.05', '--seconds', '0.1', '--steps', '1', '--warmup', '1', '--no-compile',
          '--workers', '0', '--skip', 'pipeline', '--skip', 'profile', '--precision', 'bf16-plan',
          '--compare', 'fp32', '--json', str(out)])
    report = json.loads(out.read_text())
    by_name = {(r['kind'], r['name']): r for r in report['results']}
    for kind in ('model', 'e2e'):
        assert by_name[(kind, 'ours')]['settings']['precision'] == 'bf16-plan'
        assert by_name[(kind, 'ours, fp32')]['settings']['precision'] == 'fp32'
        # the same number of turns as ours: they were timed in the same rounds
        assert len(by_name[(kind, 'ours, fp32')]['repeats']) == len(by_name[(kind, 'ours')]['repeats'])
        assert f'{kind}: ours, fp32' in report['ratios']
