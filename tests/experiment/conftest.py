"""
Fixtures for the CIFAR-10 experiment's tests: small learnable data sets in
CIFAR-10's exact on-disk layout (see `cifar10_testdata.py`).
"""

from pathlib import Path

import pytest

from cifar10_testdata import write_dataset


@pytest.fixture(scope='session')
def synthetic_cifar(tmp_path_factory) -> Path:
    """A learnable 4-class data set: 640 training and 200 test images."""
    return write_dataset(tmp_path_factory.mktemp('synthetic_cifar'))


@pytest.fixture(scope='session')
def larger_synthetic_cifar(tmp_path_factory) -> Path:
    """The same kind of data, 5,000 training images: epochs long enough to be interrupted."""
    return write_dataset(tmp_path_factory.mktemp('larger_synthetic_cifar'), n_train_per_file=1000)
