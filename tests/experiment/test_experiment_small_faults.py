"""
Small faults, each one line: SIGTERM and Ctrl+C name the run to resume, a
lone image on a 1 x 1 patch grid, a folder or a truncated file given as
`--weights`.
"""

import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from cifar10_testdata import SCRIPT, TINY, run_script
from imagefolder_testdata import run_imagenet
from labml_convmixer import download
from labml_convmixer.model import convmixer


@pytest.mark.parametrize('sig, code', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_names_its_uuid_for_resume(synthetic_cifar, tmp_path, sig, code):
    command = [sys.executable, str(SCRIPT), '--data-dir', str(synthetic_cifar), '--epochs', '3',
               '--logs-dir', str(tmp_path), *TINY]
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        for line in process.stdout:
            if re.match(r'epoch 1/3 ', line.strip()):
                break
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    run = next(tmp_path.glob('cifar10/*'))
    assert process.returncode == code
    assert stderr.strip().splitlines()[-1] == (
        f"cifar10.py: interrupted; the last finished epoch is saved, continue with "
        f"--resume {run.name}")
    assert torch.load(run / 'checkpoint.pt', weights_only=True)['epoch'] >= 1


def test_a_lone_image_on_a_one_patch_grid_is_one_line(synthetic_cifar, tmp_path):
    # 65 images in batches of 64: the last batch is one image, and a 32-pixel
    # patch covers the whole 32 x 32 image
    result = run_script('--data-dir', synthetic_cifar, '--logs-dir', tmp_path, '--epochs', '1',
                        *TINY, '--patch-size', '32', '--train-subset', '65')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "cifar10.py: error: a batch of 1 image on a 1 x 1 patch grid gives batch norm one "
        "value per channel; change --batch-size or --train-subset so that the last batch "
        "has two or more images, or use a smaller --patch-size"]
    run = next(tmp_path.glob('cifar10/*'))
    assert not (run / 'checkpoint.pt').exists()


def test_weights_given_as_a_folder_say_so(tmp_path):
    result = run_imagenet('--weights', tmp_path, '--eval-only', '--logs-dir', tmp_path / 'logs')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"imagenet.py: error: --weights {tmp_path}: is a folder; give the checkpoint file in it"]
    assert not (tmp_path / 'logs').exists()


def test_a_truncated_file_says_download_again_only_when_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    whole = tmp_path / 'whole.pth'
    torch.save(convmixer(8, 1, kernel_size=3, patch_size=4, n_classes=3).state_dict(), whole)
    data = whole.read_bytes()
    local = tmp_path / 'mine.pth'
    local.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError) as error:
        download.open_checkpoint(local)
    assert str(error.value).endswith('the file may be incomplete or damaged: copy or save it '
                                     'again from where it came from')
    cached = download.cache_dir() / 'convmixer.pth'
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError) as error:
        download.open_checkpoint(cached)
    assert str(error.value).endswith('delete it and download it again')
