"""
The ImageNet experiment's data and command line, in process: the evaluation
transform equals timm's for every named model, folders that break the layout
are refused with one clear message, a broken image names its file even from a
loader worker, the schedule, and settings that do not go together.
"""

import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cifar10_testdata import ROOT
from imagefolder_testdata import CLASSES, TINY, run_imagenet, write_folder

sys.path.insert(0, str(ROOT))
from experiments import imagenet  # noqa: E402
from experiments.datasets import imagefolder_data  # noqa: E402
from experiments.runner import cli, launch  # noqa: E402
from experiments.runner.errors import UserError  # noqa: E402
from labml_convmixer.models import MODELS  # noqa: E402

IMAGENET_MODELS = ['convmixer_1536_20', 'convmixer_768_32', 'convmixer_1024_20_ks9_p14']


def random_images(seed=0):
    """Photographs' stand-ins: noise with smooth gradients, in several shapes."""
    rng = np.random.default_rng(seed)
    images = []
    for height, width in [(300, 400), (500, 233), (224, 224), (481, 640), (233, 1000)]:
        ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
        pixels = 0.5 * ramp + rng.normal(64, 40, size=(height, width, 3))
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return images


@pytest.mark.parametrize('name', IMAGENET_MODELS)
def test_eval_transform_equals_timms(name):
    import timm
    from timm.data import create_transform, resolve_data_config
    pretrained_cfg = timm.models.get_pretrained_cfg(name).to_dict()
    config = resolve_data_config({}, pretrained_cfg=pretrained_cfg)
    assert config['input_size'] == (3, 224, 224) and config['crop_pct'] == 0.96
    assert config['interpolation'] == 'bicubic' and config['crop_mode'] == 'center'
    theirs = create_transform(**config)
    # Ours from the model's configuration, and the experiment's defaults are the same
    spec = MODELS[name]
    ours = imagefolder_data.eval_transform(spec.input_size, spec.crop_pct,
                                           spec.interpolation, spec.mean, spec.std)
    defaults = {k: s.default for k, s in cli.settings_of(imagenet.Configs).items()}
    ours_by_default = (defaults['image_size'], defaults['crop_pct'],
                       defaults['interpolation'])
    assert ours_by_default == (spec.input_size, spec.crop_pct, spec.interpolation)
    assert (tuple(config['mean']), tuple(config['std'])) == (spec.mean, spec.std)
    steps = imagefolder_data.describe(ours)
    assert steps[0].startswith('Resize(size=233, interpolation=bicubic')
    assert steps[1] == 'CenterCrop(size=(224, 224))'
    for image in random_images():
        a, b = ours(image), theirs(image)
        assert a.shape == (3, 224, 224)
        # Equal, not merely close: both resize with PIL's bicubic kernel
        assert torch.equal(a, b)


def test_train_transform_shapes_and_device_variant():
    def transform(size, scale, **on_device):
        return imagefolder_data.train_transform(
            size, scale, 'bicubic', flip=True, num_ops=2, magnitude=9, mean=(0.5,) * 3,
            std=(0.25,) * 3, **on_device)

    image = random_images()[1]
    x = transform(64, 0.08)(image)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    # For the batched pipeline: the crop only, as uint8, augmented later on the device
    u = transform(64, 0.08, on_device=True)(image)
    assert u.shape == (3, 64, 64) and u.dtype == torch.uint8
    # A square image at scale 1: the crop is the whole image, unchanged
    square = random_images()[2]
    pixels = torch.from_numpy(np.array(square)).permute(2, 0, 1)
    assert torch.equal(transform(224, 1.0, on_device=True)(square), pixels)


def test_batched_pipeline_crops_in_workers_and_augments_on_the_device(tmp_path):
    from experiments.datasets.gpu_augment import BatchAugment
    root = write_folder(tmp_path / 'data', n_train=3, n_val=1)
    samples = imagefolder_data.read_image_folder(root).train
    crops = imagefolder_data.train_transform(32, 0.5, 'bicubic', flip=True, num_ops=2,
                                             magnitude=9, mean=(0.5,) * 3,
                                             std=(0.25,) * 3, on_device=True)
    sampler = torch.utils.data.RandomSampler(samples)
    loader = imagefolder_data.image_loader(samples, crops, sampler, 5, 0, False)
    batches = imagefolder_data.DeviceAugment(loader, torch.device('cpu'),
                                             BatchAugment((0.5,) * 3, (0.25,) * 3))
    assert len(batches) == 3 and batches.sampler is sampler
    shapes = [(images.shape, images.dtype, labels.shape) for images, labels in batches]
    assert shapes == [((5, 3, 32, 32), torch.float32, (5,))] * 2 + \
        [((2, 3, 32, 32), torch.float32, (2,))]


# ## Folders

def test_reads_classes_in_sorted_order(tmp_path):
    root = write_folder(tmp_path / 'data', n_train=3, n_val=2)
    (root / 'train' / 'red' / 'notes.txt').write_text('not an image')
    (root / 'val' / '.cache').mkdir()
    data = imagefolder_data.read_image_folder(root)
    assert data.classes == CLASSES
    assert len(data.train) == 12 and len(data.valid) == 8
    assert [label for _, label in data.valid] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all(path.startswith(str(root / 'val' / CLASSES[label]))
               for path, label in data.valid)


def refused(root, need_train=True) -> str:
    start = time.monotonic()
    with pytest.raises(UserError) as error:
        imagefolder_data.read_image_folder(root, need_train)
    assert time.monotonic() - start < 15
    message = str(error.value)
    assert '\n' not in message
    return message


def test_bad_folders_are_refused_with_one_line(tmp_path):
    nothing = tmp_path / 'nothing'
    assert refused(nothing).startswith(f"{nothing} is not a folder")
    root = write_folder(tmp_path / 'data', n_train=2, n_val=2)
    (root / 'train').rename(tmp_path / 'train_elsewhere')
    assert refused(root) == (f"{root} has no train/ folder: put the images in "
                             f"{root / 'train'}/<class>/ "
                             f"(--eval-only evaluates without one)")
    # ... which evaluation does not need
    assert imagefolder_data.read_image_folder(root, need_train=False).classes == CLASSES
    (tmp_path / 'train_elsewhere').rename(root / 'train')
    (root / 'val').rename(root / 'valid')
    assert refused(root, need_train=False).startswith(f"{root} has no val/ folder")
    (root / 'valid').rename(root / 'val')

    (root / 'train' / 'stripes').rename(root / 'train' / 'zebra')
    (root / 'val' / 'green').rename(root / 'val' / 'greenish')
    assert refused(root) == (f"the class folders of {root}/train and {root}/val "
                             f"differ: only in train/: green, zebra; "
                             f"only in val/: greenish, stripes")


def test_too_few_classes_and_empty_classes(tmp_path):
    root = write_folder(tmp_path / 'one', n_train=2, n_val=2, classes=['cat'])
    assert refused(root) == (f"{root / 'val'} has 1 class folder (cat): "
                             f"a classifier needs at least 2")
    root = tmp_path / 'none'
    (root / 'train').mkdir(parents=True)
    (root / 'val').mkdir()
    assert 'has 0 class folders: a classifier needs at least 2' in refused(root)
    root = write_folder(tmp_path / 'empty', n_train=2, n_val=2, classes=['cat', 'dog'])
    for file in (root / 'val' / 'dog').iterdir():
        file.unlink()
    empty = root / 'val' / 'dog'
    assert refused(root).startswith(f"{empty} has no image files (.jpg, ")


def test_a_broken_image_names_its_file_even_from_a_worker(tmp_path):
    root = write_folder(tmp_path / 'data', n_train=1, n_val=3, classes=['cat', 'dog'])
    broken = root / 'val' / 'dog' / 'img_0001.png'
    broken.write_bytes(broken.read_bytes()[:60])
    data = imagefolder_data.read_image_folder(root, need_train=False)
    transform = imagefolder_data.eval_transform(32, 0.875, 'bicubic', (0.5,) * 3,
                                                (0.5,) * 3)
    files = imagefolder_data.ImageFiles(data.valid, transform)
    for workers in (0, 1):
        loader = DataLoader(files, batch_size=2, num_workers=workers)
        with pytest.raises(imagefolder_data.UnreadableImage) as error:
            list(loader)
        message = str(error.value)
        assert message.startswith(f"{broken}: cannot read this image (")
        assert '\n' not in message and 'Traceback' not in message
        assert message.endswith('delete or replace the file, then start again or '
                                '--resume RUN_UUID')


def test_random_subset_mixes_classes_and_is_repeatable():
    samples = [(f'{label}/{i}.jpg', label) for label in range(4) for i in range(50)]
    subset = imagefolder_data.random_subset(samples, 20, seed=3)
    assert subset == imagefolder_data.random_subset(samples, 20, seed=3)
    assert subset != imagefolder_data.random_subset(samples, 20, seed=4)
    assert len(subset) == 20 and len({label for _, label in subset}) == 4
    assert subset == sorted(subset, key=samples.index)
    assert imagefolder_data.random_subset(samples, 0, seed=3) is samples


def test_warmup_then_cosine():
    lr = imagenet.warmup_cosine_lr
    assert lr(0, 10, 1.0, 1.0) == 0
    assert lr(0.5, 10, 1.0, 1.0) == pytest.approx(0.5)
    assert lr(1.0, 10, 1.0, 1.0) == pytest.approx(1.0)
    # Half way through the cosine, half the peak; nothing at the end
    assert lr(5.5, 10, 1.0, 1.0) == pytest.approx(0.5)
    assert lr(10, 10, 1.0, 1.0) == pytest.approx(0.0)
    # A run shorter than twice the warm-up warms up for half of it
    assert lr(1.0, 2, 1.0, 5.0) == pytest.approx(1.0)
    assert lr(0.5, 2, 1.0, 5.0) == pytest.approx(0.5)


# ## Settings that do not go together

def parse(*argv):
    parser = launch.build_parser(imagenet.Configs, 'imagenet.py', '',
                                 imagenet.IMAGENET_CHECKS, eval_only=True)
    return launch.parse_overrides(parser.parse_args(list(argv)), imagenet.Configs,
                                  imagenet.IMAGENET_CHECKS, 1, imagenet.check_settings)


def test_flags_are_parsed():
    values = parse('--model', 'convmixer_768_32', '--pretrained', '--eval-only',
                   '--scale', '0.3', '--image-size', '160')
    assert values == {'model_name': 'convmixer_768_32', 'pretrained': True,
                      'scale': 0.3, 'image_size': 160}


PUBLISHED = 'convmixer_1024_20_ks9_p14, convmixer_1536_20, convmixer_768_32'


@pytest.mark.parametrize('argv, message', [
    (['--pretrained'], f'--pretrained needs --model NAME, one of {PUBLISHED}'),
    (['--model', 'convmixer_256_8', '--pretrained'],
     f'convmixer_256_8 has no published weights (those that have: {PUBLISHED}); '
     f'drop --pretrained to train it from scratch, or start from a file with '
     f'--weights FILE'),
    (['--model', 'convmixer_768_32', '--pretrained', '--weights', __file__],
     '--pretrained and --weights both give the starting weights: choose one'),
    (['--model', 'convmixer_768_32', '--d-model', '64', '--set', 'activation=gelu'],
     '--model convmixer_768_32 fixes the architecture: drop --d-model, --activation'),
    (['--model', 'convmixer_1024_20_ks9_p14', '--image-size', '8'],
     'the patch (14) is larger than the image (image_size 8)'),
    (['--eval-only'], '--eval-only evaluates starting weights: give --model NAME '
                      '--pretrained, or --weights FILE (a run of this experiment: '
                      '--evaluate RUN_UUID)'),
    (['--model', 'convmixer_999'], "unknown model 'convmixer_999': choose one of "),
    (['--weights', '/no/such/file.pth'], '--weights /no/such/file.pth: no such file'),
    (['--crop-pct', '1.5'], 'crop_pct must be at most 1, got 1.5'),
    (['--interpolation', 'nearest'], "unknown interpolation 'nearest'"),
    (['--eval-only', '--resume', 'abc'],
     '--resume and --eval-only cannot be used together'),
])
def test_settings_that_do_not_go_together(argv, message):
    start = time.monotonic()
    with pytest.raises(UserError) as error:
        if '--resume' in argv:
            launch.main(imagenet.Configs, name='imagenet', prog='imagenet.py',
                        description='', checks=imagenet.IMAGENET_CHECKS, argv=argv,
                        eval_only=True)
        parse(*argv)
    assert message in str(error.value)
    assert error.value.exit_code == 2
    assert time.monotonic() - start < 15


def test_links_to_folders_that_loop_or_leave_the_class_are_refused(tmp_path):
    root = write_folder(tmp_path / 'data', n_train=2, n_val=2)
    loop = root / 'train' / 'blue' / 'up'
    loop.symlink_to('..')
    before = sorted(p.name for p in (root / 'train').rglob('*') if not p.is_symlink())
    start = time.monotonic()
    result = run_imagenet('--data-dir', root, '--logs-dir', tmp_path / 'logs', *TINY,
                          '--epochs', '1')
    assert time.monotonic() - start < 60
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"imagenet.py: error: {loop} is a link to {root / 'train'}, which leads outside its "
        f"class folder {root / 'train' / 'blue'}: links to folders are followed only within "
        f"the class folder; remove the link or put the images themselves there"]
    assert sorted(p.name for p in (root / 'train').rglob('*') if not p.is_symlink()) == before
    # A link back up within the class folder is a loop; one to a sibling folder is followed
    loop.unlink()
    inner = root / 'train' / 'blue' / 'more'
    inner.mkdir()
    (inner / 'again').symlink_to('..')
    with pytest.raises(imagefolder_data.DataError, match='leads back up the folder tree'):
        imagefolder_data.read_image_folder(root)
    (inner / 'again').unlink()
    (root / 'train' / 'blue' / 'copy').symlink_to(inner)
    sibling = root / 'train' / 'blue' / 'img_0000.jpg'
    sibling.rename(inner / 'img_0000.jpg')
    data = imagefolder_data.read_image_folder(root)
    blue = [path for path, label in data.train if label == data.classes.index('blue')]
    assert len(blue) == 3
    assert any(path.endswith('copy/img_0000.jpg') for path in blue)
