"""
The from-scratch check on real images, run small: scikit-learn's digits as a
32-pixel PNG folder, a plain PyTorch loop and the ImageNet experiment with no
recipe flags, the same model, data and epochs; the experiment must come
within 5 points of the loop (`benchmarks/digits_check.py`).
"""

import json
import subprocess
import sys

from PIL import Image

from cifar10_testdata import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks.digits_check import write_digits  # noqa: E402


def test_digits_are_written_as_an_image_folder(tmp_path):
    counts = write_digits(tmp_path)
    assert counts == {'train': 1438, 'val': 359}
    assert sorted(p.name for p in (tmp_path / 'train').iterdir()) == [str(d) for d in range(10)]
    image = Image.open(next((tmp_path / 'val' / '7').glob('*.png')))
    assert image.size == (32, 32) and image.mode == 'RGB'
    # No image is in both splits
    names = {split: {p.name for p in (tmp_path / split).rglob('*.png')}
             for split in ('train', 'val')}
    assert not names['train'] & names['val']


def test_from_scratch_comes_within_5_points_of_a_plain_loop(tmp_path):
    numbers = tmp_path / 'numbers.json'
    result = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / 'digits_check.py'), '--epochs', '8',
         '--d-model', '32', '--n-layers', '2', '--patch-size', '4', '--workers', '2',
         '--json', str(numbers)],
        capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    found = json.loads(numbers.read_text())
    assert found['recipe']['name'] == 'scratch'
    # Ten digits: chance is 10 %; both must have learned well (about 88 % and
    # more at these 8 epochs), so that 5 points is a comparison, not noise
    assert found['plain_loop'] > 0.8
    assert found['experiment'] > found['plain_loop'] - 0.05
