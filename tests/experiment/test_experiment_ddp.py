"""
`torchrun` with two processes on CPU (gloo): DistributedDataParallel keeps the
processes' models identical, only the first process writes the run folder,
a killed distributed run resumes to the same numbers, and the process group
is closed with every process waiting for the others only after a finished run.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cifar10_testdata import ROOT, SCRIPT, TINY

sys.path.insert(0, str(ROOT))
from experiments import cifar10  # noqa: E402
from experiments.runner import distributed, launch  # noqa: E402

METRICS = ('train_loss', 'train_accuracy', 'valid_loss', 'valid_accuracy')
ENV = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')


def descendants(pid):
    children = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_until_gone(pids, timeout=20):
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
            except OSError:
                break
            if state in 'ZX':
                break
            time.sleep(0.05)


def torchrun_command(*args):
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
            str(SCRIPT), *map(str, args)]


@pytest.fixture(scope='module')
def ddp_run(larger_synthetic_cifar, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('ddp')
    logs, digests = tmp_path / 'logs', tmp_path / 'digests'
    result = subprocess.run(
        torchrun_command('--data-dir', larger_synthetic_cifar, '--train-subset', '2400', '--logs-dir', logs, '--epochs', '3',
                         '--weights-digest', digests, *TINY),
        capture_output=True, text=True, timeout=600, env=ENV, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result, logs, digests


def test_two_processes_end_with_identical_weights(ddp_run):
    result, logs, digests = ddp_run
    rank0, rank1 = (digests / 'rank0.sha256').read_text(), (digests / 'rank1.sha256').read_text()
    assert len(rank0.strip()) == 64
    assert rank0 == rank1

    # One run folder, written by rank 0 only
    runs = list(logs.glob('*/*'))
    assert len(runs) == 1
    assert sorted(p.name for p in logs.iterdir()) == ['cifar10']
    summary = json.loads((runs[0] / 'summary.json').read_text())
    assert summary['world_size'] == 2 and summary['epochs'] == 3
    assert summary['valid_accuracy'] >= 0.5
    # Only rank 0 speaks: one line per epoch, not two
    assert sum(line.startswith('epoch ') for line in result.stdout.splitlines()) == 3


def test_killed_distributed_run_resumes_exactly(ddp_run, larger_synthetic_cifar, tmp_path):
    _, reference_logs, _ = ddp_run
    # The reference is the uninterrupted three-epoch run of the fixture
    expected = json.loads(next(reference_logs.glob('cifar10/*/summary.json')).read_text())['history']

    logs = tmp_path / 'logs'
    process = subprocess.Popen(
        torchrun_command('--data-dir', larger_synthetic_cifar, '--train-subset', '2400', '--logs-dir', logs, '--epochs', '3', *TINY),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV, cwd=ROOT,
        start_new_session=True)
    try:
        for line in process.stdout:
            if re.match(r'epoch 1/3 ', line):
                break
    finally:
        # torchrun and both of its workers die at once (the workers run in
        # sessions of their own, so a process group kill would miss them)
        victims = [process.pid, *descendants(process.pid)]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        process.wait()
        wait_until_gone(victims)
    run = next(logs.glob('cifar10/*'))
    assert not (run / 'summary.json').exists()

    resumed = subprocess.run(torchrun_command('--resume', run.name, '--logs-dir', logs),
                             capture_output=True, text=True, timeout=600, env=ENV, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert re.search(rf'resuming run {run.name} after epoch 1$', resumed.stdout, re.M)
    history = json.loads((run / 'summary.json').read_text())['history']
    assert [{k: r[k] for k in METRICS} for r in history] == [{k: r[k] for k in METRICS} for r in expected]


@pytest.fixture
def group_calls(monkeypatch):
    """What a run does to its process group, without a process group."""
    calls = []
    monkeypatch.setattr(distributed.dist, 'barrier', lambda: calls.append('barrier'))
    monkeypatch.setattr(distributed.dist, 'destroy_process_group',
                        lambda: calls.append('destroy'))
    return calls


@pytest.mark.parametrize('finished, expected', [(True, ['barrier', 'destroy']),
                                                (False, ['destroy'])])
def test_process_group_closes_after_the_others_only_when_finished(group_calls, finished,
                                                                  expected):
    distributed.end_distributed(distributed.DistInfo(rank=1, world_size=2), finished)
    assert group_calls == expected
    group_calls.clear()
    # A world of one process has no group to close
    distributed.end_distributed(distributed.DistInfo(), finished)
    assert group_calls == []


def test_a_failing_distributed_run_does_not_wait_for_the_others(group_calls, monkeypatch,
                                                               tmp_path):
    def fail(*args, **kwargs):
        raise RuntimeError('the data is gone')

    # The first process: a later one would silence the console of the tests that follow
    monkeypatch.setattr(distributed, 'init_distributed',
                        lambda device: distributed.DistInfo(rank=0, world_size=2))
    monkeypatch.setattr(distributed, 'world_size', lambda: 2)
    monkeypatch.setattr(launch, 'train', fail)
    with pytest.raises(RuntimeError, match='the data is gone'):
        launch.main(cifar10.Configs, name='cifar10', prog='cifar10.py', description='',
                    checks=cifar10.CIFAR10_CHECKS,
                    argv=['--logs-dir', str(tmp_path), '--device', 'cpu'])
    assert group_calls == ['destroy']

    monkeypatch.setattr(launch, 'train', lambda *args, **kwargs: 0)
    assert launch.main(cifar10.Configs, name='cifar10', prog='cifar10.py', description='',
                       checks=cifar10.CIFAR10_CHECKS,
                       argv=['--logs-dir', str(tmp_path), '--device', 'cpu']) == 0
    assert group_calls == ['destroy', 'barrier', 'destroy']
