"""
Data in CIFAR-10's layout is read as it is and checked by structure; each
kind of malformed file gets an error that names the file and the problem.
"""

import pickle
import shutil
import sys

import numpy as np
import pytest
import torch

from cifar10_testdata import CLASSES, ROOT, run_script, write_dataset

sys.path.insert(0, str(ROOT))
from experiments.datasets import cifar10_data  # noqa: E402


def test_reads_the_layout_as_uint8_tensors(synthetic_cifar):
    data = cifar10_data.read_cifar_folder(synthetic_cifar)
    assert data.classes == CLASSES
    assert data.train_images.shape == (640, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (200, 3, 32, 32)
    assert data.train_labels.dtype == torch.int64 and int(data.train_labels.max()) <= 3
    # Planes are R, G, B: in the synthetic set a "red" image is brightest in plane 0
    red = data.train_images[data.train_labels == 0].double().mean(dim=(0, 2, 3))
    assert red[0] > red[1] + 50 and red[0] > red[2] + 50


def _rewrite(folder, name, obj):
    with open(folder / name, 'wb') as f:
        pickle.dump(obj, f)


def _good_batch(n=4):
    return {'data': np.zeros((n, 3072), np.uint8), 'labels': [0] * n}


@pytest.mark.parametrize('file, content, message', [
    ('data_batch_2', {'labels': [0]}, "missing key 'data'"),
    ('data_batch_2', {'data': np.zeros((2, 3072), np.float32), 'labels': [0, 1]}, 'dtype float32, expected uint8'),
    ('data_batch_3', {'data': np.zeros((2, 1024), np.uint8), 'labels': [0, 1]}, 'shape (2, 1024), expected (N, 3072)'),
    ('test_batch', {'data': np.zeros((2, 3072), np.uint8), 'labels': [0, 4]}, 'label 4 is out of range 0..3'),
    ('test_batch', {'data': np.zeros((2, 3072), np.uint8), 'labels': [0]}, '1 labels for 2 images'),
    ('data_batch_1', [1, 2, 3], 'expected a dictionary, found list'),
    ('batches.meta', {'num_cases_per_batch': 4}, "missing key 'label_names'"),
    ('batches.meta', {'label_names': ['cat', 'cat']}, 'duplicate names'),
    ('data_batch_5', None, 'file is missing'),
    ('data_batch_4', b'not a pickle at all', 'not a readable CIFAR-10 pickle'),
])
def test_malformed_files_are_named_with_the_problem(tmp_path, file, content, message):
    root = write_dataset(tmp_path, n_train_per_file=4, n_test=4)
    folder = root / 'cifar-10-batches-py'
    if content is None:
        (folder / file).unlink()
    elif isinstance(content, bytes):
        (folder / file).write_bytes(content)
    else:
        _rewrite(folder, file, content)
    with pytest.raises(cifar10_data.DataError) as error:
        cifar10_data.read_cifar_folder(root)
    assert str(error.value).startswith(str(folder / file) + ':')
    assert message in str(error.value)


def test_pickles_that_would_run_code_are_refused(tmp_path):
    root = write_dataset(tmp_path, n_train_per_file=4, n_test=4)
    folder = root / 'cifar-10-batches-py'

    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / 'victim'),))

    (tmp_path / 'victim').mkdir()
    _rewrite(folder, 'data_batch_1', {'data': Evil(), 'labels': []})
    with pytest.raises(cifar10_data.DataError, match='shutil.rmtree'):
        cifar10_data.read_cifar_folder(root)
    assert (tmp_path / 'victim').exists()


def test_bytes_keys_and_names_are_accepted(tmp_path):
    root = write_dataset(tmp_path, n_train_per_file=4, n_test=4)
    folder = root / 'cifar-10-batches-py'
    _rewrite(folder, 'batches.meta', {b'label_names': [n.encode() for n in CLASSES]})
    _rewrite(folder, 'test_batch', {b'data': np.zeros((3, 3072), np.uint8), b'labels': [3, 2, 1]})
    data = cifar10_data.read_cifar_folder(root)
    assert data.classes == CLASSES and data.test_labels.tolist() == [3, 2, 1]


def test_malformed_file_from_the_command_line(tmp_path):
    root = write_dataset(tmp_path / 'd', n_train_per_file=4, n_test=4)
    path = root / 'cifar-10-batches-py' / 'data_batch_3'
    _rewrite(path.parent, path.name, {'data': np.zeros((2, 3072), np.int64), 'labels': [0, 1]})
    result = run_script('--data-dir', root, '--logs-dir', tmp_path / 'logs', '--no-compile', timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == f'cifar10.py: error: {path}: \'data\' has dtype int64, expected uint8'
