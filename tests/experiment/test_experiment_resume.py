"""
A run killed with SIGKILL in the middle of an epoch, resumed with `--resume`,
ends with exactly the per-epoch numbers of a run that was never interrupted.
"""

import json
import signal
import sys

import torch

from cifar10_testdata import (SCRIPT, TINY, assert_resumed_exactly,
                              kill_during_second_epoch, run_script)

METRICS = ('train_loss', 'train_accuracy', 'valid_loss', 'valid_accuracy')


def test_resume_after_kill_is_exact(synthetic_cifar, tmp_path):
    args = ['--data-dir', synthetic_cifar, '--epochs', '3', '--seed', '7', *TINY]

    # The reference: three epochs without interruption
    reference = run_script(*args, '--logs-dir', tmp_path / 'reference')
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = json.loads(next(tmp_path.glob('reference/cifar10/*/summary.json')).read_text())['history']

    # The same run, killed half way through its second epoch
    logs = tmp_path / 'killed'
    command = [sys.executable, SCRIPT, *args, '--logs-dir', logs]
    status = kill_during_second_epoch(command)
    assert status == -signal.SIGKILL
    run = next(logs.glob('cifar10/*'))
    checkpoint = torch.load(run / 'checkpoint.pt', weights_only=True)
    # Killed after the first checkpoint and before the second: in the middle of epoch 2
    assert checkpoint['epoch'] == 1
    assert not (run / 'summary.json').exists()

    resumed = run_script('--resume', run.name, '--logs-dir', logs)
    assert f'resuming run {run.name} after epoch 1' in resumed.stdout
    assert_resumed_exactly(resumed, run, expected, METRICS)


def test_resume_rejects_changed_settings_and_unknown_runs(tmp_path):
    result = run_script('--resume', '0123abcd', '--logs-dir', tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"cifar10.py: error: no run 0123abcd in {tmp_path}"
    run = tmp_path / 'cifar10' / 'feedbeef'
    run.mkdir(parents=True)
    result = run_script('--resume', 'feedbeef', '--logs-dir', tmp_path)
    assert result.returncode == 1
    assert 'has no checkpoint yet' in result.stderr and 'Traceback' not in result.stderr
