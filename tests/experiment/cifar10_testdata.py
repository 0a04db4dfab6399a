"""
Helpers for the CIFAR-10 experiment's tests: a small data set that a tiny
ConvMixer can learn, written in CIFAR-10's exact on-disk layout, and a way to
run the experiment as a user would.
"""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'experiments' / 'cifar10.py'
CLASSES = ['red', 'green', 'blue', 'stripes']


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """
    Class-dependent patterns plus noise, as `uint8` `[N, 3072]` (R, G, B planes):
    classes 0-2 brighten one colour plane, class 3 has horizontal stripes.
    """
    n = len(labels)
    images = rng.normal(110, 35, size=(n, 3, 32, 32))
    for c in range(3):
        images[labels == c, c] += 90
    stripes = np.zeros((32, 32))
    stripes[::4] = 100
    stripes[1::4] = 100
    images[labels == 3] += stripes
    return np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072)


def write_batch(path: Path, data, labels):
    with open(path, 'wb') as f:
        pickle.dump({'batch_label': 'synthetic', 'data': data, 'labels': list(map(int, labels))}, f)


def write_dataset(root: Path, n_train_per_file: int = 128, n_test: int = 200, seed: int = 0) -> Path:
    folder = root / 'cifar-10-batches-py'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        labels = rng.integers(0, len(CLASSES), n_train_per_file)
        write_batch(folder / f'data_batch_{i}', make_images(labels, rng), labels)
    labels = rng.integers(0, len(CLASSES), n_test)
    write_batch(folder / 'test_batch', make_images(labels, rng), labels)
    with open(folder / 'batches.meta', 'wb') as f:
        pickle.dump({'label_names': CLASSES, 'num_cases_per_batch': n_train_per_file}, f)
    return root


# Small, fast settings shared by the training tests
TINY = ['--d-model', '16', '--n-layers', '2', '--kernel-size', '3', '--patch-size', '4',
        '--batch-size', '64', '--num-workers', '0', '--no-compile', '--lr', '0.01']


def run_script(*args, timeout=240, env=None, script=SCRIPT,
               **kwargs) -> subprocess.CompletedProcess:
    """Run an experiment (CIFAR-10 unless `script` says) as a user would, no tty."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, str(script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=ROOT, **kwargs)


def kill_during_second_epoch(command, pause: float = 0.4) -> int:
    """
    Start `command` (a training run of 3 epochs), wait for its first epoch's line,
    then `pause` of that epoch's time, and kill it with SIGKILL; its exit status.
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    process = subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in process.stdout:
            match = re.match(r'epoch 1/3 .* ([\d.]+) s$', line.strip())
            if match:
                time.sleep(pause * float(match.group(1)))
                break
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    return process.returncode


def assert_resumed_exactly(resumed, run: Path, expected, metrics):
    """A `--resume` of `run` that ended with the per-epoch numbers `expected`."""
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'resuming run {run.name} after epoch' in resumed.stdout
    history = json.loads((run / 'summary.json').read_text())['history']
    assert [r['epoch'] for r in history] == [1, 2, 3]
    for got, want in zip(history, expected):
        assert {k: got[k] for k in metrics} == {k: want[k] for k in metrics}
