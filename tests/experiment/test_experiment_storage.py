"""
Full and read-only storage: the run stops within seconds with one line that
names the folder and the problem, keeps its last checkpoint (which resumes
exactly), leaves no temporary file, and its process ends although labml's
log writer was never told to stop.
"""

import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cifar10_testdata import ROOT, SCRIPT, TINY, assert_resumed_exactly, run_script

FULL_DISK = ROOT / 'tests' / 'experiment' / 'full_disk.py'
METRICS = ('train_loss', 'train_accuracy', 'valid_loss', 'valid_accuracy')


def test_a_full_disk_stops_the_run_with_one_line_and_it_resumes_exactly(synthetic_cifar,
                                                                        tmp_path):
    args = ['--data-dir', synthetic_cifar, '--epochs', '3', '--seed', '3', *TINY]
    reference = run_script(*args, '--logs-dir', tmp_path / 'reference')
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = json.loads(next(tmp_path.glob('reference/cifar10/*/summary.json'))
                          .read_text())['history']

    # The disk fills up while the third checkpoint is written. labml's log
    # writer thread is running by then, and its `finish()` fails: without
    # `stop_file_writers` the process would never end (a `TimeoutExpired` here)
    logs = tmp_path / 'logs'
    full = subprocess.run([sys.executable, str(FULL_DISK), str(logs), '2', str(SCRIPT),
                           *map(str, args), '--logs-dir', str(logs)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1'))
    run = next(logs.glob('cifar10/*'))
    assert full.returncode == 1, full.stderr[-3000:]
    assert 'Traceback' not in full.stderr
    assert full.stderr.strip().splitlines() == [
        f"cifar10.py: error: cannot write to {run}: no space left on its device; the last "
        f"checkpoint is kept: make room, then continue with --resume {run.name}"]
    assert torch.load(run / 'checkpoint.pt', weights_only=True)['epoch'] == 2
    assert not list(run.glob('.*.tmp'))
    assert not (run / 'summary.json').exists()

    resumed = run_script('--resume', run.name, '--logs-dir', logs)
    assert_resumed_exactly(resumed, run, expected, METRICS)


def test_temporary_files_of_a_killed_writer_are_removed_on_resume(synthetic_cifar, tmp_path):
    result = run_script('--data-dir', synthetic_cifar, '--logs-dir', tmp_path, '--epochs', '2',
                        *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    run = next(tmp_path.glob('cifar10/*'))
    checkpoint = torch.load(run / 'checkpoint.pt', weights_only=True)
    torch.save({**checkpoint, 'epoch': 1, 'history': checkpoint['history'][:1]},
               run / 'checkpoint.pt')
    # A process that died while writing, and one that is alive (this one)
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    stale = run / f'.checkpoint.pt.{dead}.abc123.tmp'
    live = run / f'.checkpoint.pt.{os.getpid()}.def456.tmp'
    stale.write_bytes(b'half a checkpoint')
    live.write_bytes(b'being written')
    resumed = run_script('--resume', run.name, '--logs-dir', tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not stale.exists()
    assert live.read_bytes() == b'being written'


@contextlib.contextmanager
def read_only(folder):
    """
    `folder` on read-only storage: bind-mounted read-only onto itself where we
    may mount (as root, whom file modes do not stop), else made unwritable.
    Yields the reason a write there fails, as `strerror` says it.
    """
    mounted = os.geteuid() == 0 and subprocess.run(
        ['mount', '--bind', str(folder), str(folder)], capture_output=True).returncode == 0
    if mounted:
        remount = subprocess.run(['mount', '-o', 'remount,bind,ro', str(folder)],
                                 capture_output=True)
        assert remount.returncode == 0, remount.stderr
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob('*')]}
        for p in modes:
            p.chmod(modes[p] & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield os.strerror(errno.EROFS if mounted else errno.EACCES)
    finally:
        if mounted:
            subprocess.run(['umount', str(folder)], check=True)
        else:
            for p, mode in modes.items():
                p.chmod(mode)


def test_a_read_only_logs_dir_is_one_line(synthetic_cifar, tmp_path):
    logs = tmp_path / 'logs'
    logs.mkdir()
    with read_only(logs) as reason:
        start = time.monotonic()
        result = run_script('--data-dir', synthetic_cifar, '--logs-dir', logs, '--epochs', '1',
                            *TINY)
        assert time.monotonic() - start < 60
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"cifar10.py: error: --logs-dir {logs}: cannot write there ({reason}); choose a "
        f"folder you can write to"]
    assert not list(logs.iterdir())


def test_evaluate_of_a_read_only_run_writes_beside_it_and_says_where(synthetic_cifar,
                                                                     tmp_path):
    logs = tmp_path / 'logs'
    result = run_script('--data-dir', synthetic_cifar, '--logs-dir', logs, '--epochs', '1',
                        *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    run = next(logs.glob('cifar10/*'))
    before = {p: p.read_bytes() for p in run.rglob('*') if p.is_file()}
    out = Path(tempfile.gettempdir()) / 'labml_convmixer' / f'cifar10-{run.name}'
    shutil.rmtree(out, ignore_errors=True)
    with read_only(logs):
        evaluated = run_script('--evaluate', run.name, '--logs-dir', logs)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert f"run folder {run} is read-only: the evaluation goes to {out}" in evaluated.stdout
    assert f"confusion matrix in {out / 'confusion_matrix.png'}" in evaluated.stdout
    assert json.loads((out / 'evaluation.json').read_text())['run_uuid'] == run.name
    assert (out / 'filters.png').exists()
    assert {p: p.read_bytes() for p in run.rglob('*') if p.is_file()} == before
    shutil.rmtree(out)
