"""
The command line: every flag is listed, wrong values are refused with one
line before any data is read, and a machine without data and without network
gets a short message in seconds.
"""

import sys
import time

import pytest

from cifar10_testdata import ROOT, run_script

sys.path.insert(0, str(ROOT))
from experiments import cifar10  # noqa: E402
from experiments.runner import launch  # noqa: E402
from experiments.runner.errors import UserError  # noqa: E402


def parse(*argv):
    parser = launch.build_parser(cifar10.Configs, 'cifar10.py', '', cifar10.CIFAR10_CHECKS)
    return launch.parse_overrides(parser.parse_args(list(argv)), cifar10.Configs,
                                  cifar10.CIFAR10_CHECKS, 1)


def test_help_lists_every_flag():
    result = run_script('--help', timeout=60)
    assert result.returncode == 0
    for flag in ('--data-dir', '--epochs', '--batch-size', '--lr', '--d-model', '--n-layers',
                 '--kernel-size', '--patch-size', '--activation', '--train-subset', '--seed',
                 '--device', '--name', '--set', '--resume', '--evaluate', '--compile', '--no-compile',
                 '--channels-last', '--no-channels-last', '--fused-optimizer', '--no-fused-optimizer',
                 '--precision', '--augment', '--sync-bn'):
        assert flag in result.stdout
    # The keys that --set accepts are listed too
    assert 'weight_decay (float, default 0.005)' in ' '.join(result.stdout.split())


def test_flags_and_set_are_parsed_with_types():
    values = parse('--epochs', '3', '--lr', '0.1', '--activation', 'ReLU', '--no-compile',
                   '--channels-last', '--set', 'weight_decay=0.01', '--set', 'flip=false',
                   '--set', 'randaugment-ops=1', '--precision', 'fp16')
    assert values == {'epochs': 3, 'lr': 0.1, 'activation': 'relu', 'compile': False,
                      'channels_last': True, 'weight_decay': 0.01, 'flip': False,
                      'randaugment_ops': 1, 'precision': 'fp16'}
    # Nothing given, nothing overridden: the defaults of `Configs` apply
    assert parse() == {}


@pytest.mark.parametrize('argv, message', [
    (['--epochs', '-1'], 'epochs must be at least 1, got -1'),
    (['--epochs', 'two'], "epochs must be an integer, got 'two'"),
    (['--activation', 'tanh'], "unknown activation 'tanh'"),
    (['--set', 'dropout=0.1'], "unknown setting 'dropout'"),
    (['--set', 'lr'], '--set takes KEY=VALUE'),
    (['--set', 'flip=maybe'], 'flip must be true or false'),
    (['--lr', '0'], 'lr must be positive'),
    (['--patch-size', '64'], 'patch_size must be at most 32'),
    (['--precision', 'fp8'], "unknown precision 'fp8'"),
    (['--augment', 'gpu'], "unknown augment 'gpu'"),
    (['--device', 'tpu'], "unknown device 'tpu'"),
])
def test_wrong_values_are_rejected(argv, message):
    with pytest.raises(UserError) as error:
        parse(*argv)
    assert message in str(error.value)
    assert error.value.exit_code == 2


def test_rejection_from_the_command_line_is_one_line_and_touches_nothing(tmp_path):
    data_dir = tmp_path / 'data'
    start = time.monotonic()
    result = run_script('--epochs', '-3', '--data-dir', data_dir, '--logs-dir', tmp_path / 'logs', timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == 'cifar10.py: error: epochs must be at least 1, got -3'
    assert result.stdout == ''
    assert not data_dir.exists() and not (tmp_path / 'logs').exists()
    assert time.monotonic() - start < 30
    result = run_script('--bogus-flag', timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and 'unrecognized arguments: --bogus-flag' in result.stderr


def test_sync_bn_on_cpu_is_refused():
    result = run_script('--sync-bn', '--device', 'cpu', timeout=60)
    assert result.returncode == 2
    assert 'needs CUDA GPUs' in result.stderr and 'Traceback' not in result.stderr


def test_offline_without_data_fails_fast_with_directions(tmp_path):
    data_dir = tmp_path / 'nothing_here'
    start = time.monotonic()
    result = run_script('--data-dir', data_dir, '--logs-dir', tmp_path / 'logs', '--no-compile', timeout=60)
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert elapsed < 30
    error = result.stderr.strip()
    assert 'Traceback' not in result.stderr
    assert len(error.splitlines()) == 1
    assert str(data_dir / 'cifar-10-batches-py') in error
    assert 'cifar-10-python.tar.gz' in error and '--data-dir' in error
    # The run never started, so it left no folder behind
    assert not list((tmp_path / 'logs').glob('*/*'))


def test_dashboard_flag_takes_an_optional_address():
    from experiments.runner.dashboard_client import DEFAULT_ADDRESS
    parser = launch.build_parser(cifar10.Configs, 'cifar10.py', '', cifar10.CIFAR10_CHECKS)
    assert parser.parse_args([]).dashboard is None
    assert parser.parse_args(['--dashboard']).dashboard == DEFAULT_ADDRESS == \
        'http://127.0.0.1:5005'
    assert parser.parse_args(['--dashboard', 'http://10.0.0.2:6006']).dashboard == \
        'http://10.0.0.2:6006'
