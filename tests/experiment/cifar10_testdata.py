"""
Helpers for the CIFAR-10 experiment's tests: a small data set that a tiny
ConvMixer can learn, written in CIFAR-10's exact on-disk layout, and a way to
run the experiment as a user would.
"""

import os
import pickle
import subprocess
import sys
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


def run_script(*args, timeout=240, env=None, **kwargs) -> subprocess.CompletedProcess:
    """Run the experiment as a user would, without a terminal."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=ROOT, **kwargs)
