"""
Weight files and the download cache: a text file, a damaged file or one that
holds code is named for what it is, and the published weights are found in the
cache or downloaded atomically (offline: the network is never used).
"""
import argparse
import http.server
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import torch

from labml_convmixer import download as download_module
from labml_convmixer import models as models_module
from labml_convmixer import specs as specs_module
from labml_convmixer import convmixer
from labml_convmixer.models import MODELS, create_model
from labml_convmixer.pretrained import (CheckpointMismatchError,
                                        WeightsUnavailableError, convert_state_dict,
                                        load_pretrained, read_checkpoint)
from test_pretrained import (assert_matches_timm, hub_dir, no_network,  # noqa: F401
                             randomize_batch_norms, save_official_checkpoint,
                             timm_reference, timm_to_mmpretrain)


# ## Files

class Custom:
    pass


def test_files_with_python_objects_or_damage(tmp_path):
    path = tmp_path / 'pickled.pth'
    torch.save({'state_dict': {}, 'extra': Custom()}, path)
    refused = r"holds Python objects other than tensors \(test_download.Custom\)"
    with pytest.raises(ValueError, match=refused + r".*weights_only=False"):
        read_checkpoint(path)
    broken = tmp_path / 'broken.pth.tar'
    broken.write_bytes(b'PK\x03\x04 not a whole file')
    with pytest.raises(ValueError, match='may be incomplete or damaged'):
        read_checkpoint(broken)
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00')
    with pytest.raises(ValueError, match=r"not a PyTorch checkpoint \(it begins with "
                                         r"the bytes b'\\x89PNG.*\), or it is damaged"):
        read_checkpoint(garbage)
    # A download that broke off
    whole = tmp_path / 'whole.pth'
    torch.save({'state_dict': create_model('convmixer_256_8').state_dict()}, whole)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    with pytest.raises(ValueError, match='could not read .*cut.pth'):
        read_checkpoint(cut)
    with pytest.raises(FileNotFoundError, match='no checkpoint file'):
        read_checkpoint(tmp_path / 'absent.pth')


LFS_POINTER = 'version https://git-lfs.github.com/spec/v1\noid sha256:00'


@pytest.mark.parametrize('text', ['hello', 'epoch 1\n', '<html>404 Not Found</html>',
                                  LFS_POINTER])
def test_text_file_is_named_as_text(tmp_path, text):
    # 'hello' used to end in `KeyError: 101`: the unpickler read 'h' as an
    # instruction and 'e' (101) as its argument.
    path = tmp_path / 'weights.pth'
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_pretrained(create_model('convmixer_256_8'), path)
    message = str(error.value)
    assert message.startswith(f"{path} is not a checkpoint but a text file that begins "
                              f"{' '.join(text.split())[:60]!r}")
    assert '\n' not in message and 'damaged' not in message


def test_code_in_a_checkpoint_is_refused_not_called_damaged(tmp_path):
    # A function and a whole pickled model: unpickling either runs code.
    weights = create_model('convmixer_256_8').state_dict()
    for name, obj, refused in [
            ('function.pth', {'state_dict': weights, 'hook': socket.gethostname},
             'gethostname'),
            ('module.pth', create_model('convmixer_256_8'),
             'labml_convmixer.backbone.ConvMixerBackbone')]:
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(ValueError) as error:
            load_pretrained(create_model('convmixer_256_8'), path)
        message = str(error.value)
        assert message.startswith(f'{path} holds Python objects other than tensors (')
        assert refused in message.split(')')[0]
        assert 'weights_only=False' in message and 'if you trust the file' in message
        assert 'damaged' not in message and '\n' not in message


# ## The download cache

def test_offline_download_fails_fast_with_instructions(hub_dir, monkeypatch):
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError(OSError(101, 'Network is unreachable'))

    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as error:
        create_model('convmixer_768_32', pretrained=True)
    assert time.monotonic() - start < 5
    message = str(error.value)
    target = hub_dir / 'convmixer_768_32_ks7_p7_relu.pth.tar'
    assert '\n' not in message
    assert 'Network is unreachable' in message
    assert ('download https://github.com/tmp-iclr/convmixer/releases/download/v1.0/'
            f'convmixer_768_32_ks7_p7_relu.pth.tar and save it as {target}') in message
    assert list(hub_dir.iterdir()) == []


def test_hanging_name_lookup_times_out(hub_dir, monkeypatch):
    # Without network the name lookup can hang far longer than the socket timeout.
    def slow_lookup(*args, **kwargs):
        time.sleep(3)
        raise socket.gaierror(-3, 'Temporary failure in name resolution')

    monkeypatch.setattr(socket, 'getaddrinfo', slow_lookup)
    monkeypatch.setattr(download_module, 'DOWNLOAD_TIMEOUT', 0.3)
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError,
                       match='no answer within 0.3 s.*save it as'):
        create_model('convmixer_1536_20', pretrained=True)
    assert time.monotonic() - start < 2


def test_file_in_cache_is_used_without_network(hub_dir, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    name = 'convmixer_1024_20_ks9_p14'
    save_official_checkpoint(name, hub_dir / MODELS[name].weights_file)
    assert_matches_timm(name, create_model(name, pretrained=True))


def test_mmpretrain_file_in_cache_is_used(hub_dir, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    name = 'convmixer_768_32'
    timm_model, _, _ = timm_reference(name)
    torch.save({'meta': {}, 'state_dict': timm_to_mmpretrain(timm_model.state_dict())},
               hub_dir / MODELS[name].mmpretrain_file)
    # The activation may be given when it is the trained one.
    assert_matches_timm(name, create_model(name, pretrained=True, activation='ReLU'))


def test_wrong_file_in_cache(hub_dir, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    timm_model, _, _ = timm_reference('convmixer_768_32')
    path = hub_dir / MODELS['convmixer_1024_20_ks9_p14'].weights_file
    torch.save({'state_dict': timm_model.state_dict()}, path)
    with pytest.raises(CheckpointMismatchError) as error:
        create_model('convmixer_1024_20_ks9_p14', pretrained=True)
    message = str(error.value)
    assert message.startswith(f'the checkpoint {path} (timm layout) does not fit the '
                              'model: it holds ConvMixer-768/32, k7, p7, 3 input '
                              'channels, 1000 classes; the model is ConvMixer-1024/20, '
                              'k9, p14')
    # The same through the adaptation to other input channels
    start = re.escape(f'{path}: the checkpoint (timm layout)')
    with pytest.raises(CheckpointMismatchError, match='^' + start):
        create_model('convmixer_1024_20_ks9_p14', pretrained=True, in_channels=1)


def test_pretrained_with_new_classes_and_channels(hub_dir, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    name = 'convmixer_1024_20_ks9_p14'
    save_official_checkpoint(name, hub_dir / MODELS[name].weights_file)
    timm_model, x, _ = timm_reference(name)
    model = create_model(name, pretrained=True, n_classes=10, in_channels=1).eval()
    assert model.classification.linear.weight.shape == (10, 1024)
    assert torch.equal(model.conv_mixer_layers[5].point_wise_conv.weight,
                       timm_model.blocks[5][1].weight)
    # A grey image gives the features the RGB model gives for it repeated in R, G and B.
    grey = x[:, :1]
    with torch.no_grad():
        expected = timm_model.forward_features(grey.expand(-1, 3, -1, -1))
        assert (model.forward_features(grey) - expected).abs().max().item() <= 1e-4
    features = create_model(name, pretrained=True, n_classes=0).eval()
    with torch.no_grad():
        assert features(x).shape == (2, 1024)


class _OneFileHandler(http.server.BaseHTTPRequestHandler):
    files = {}
    # A length to announce instead of the real one, to imitate a connection that
    # breaks off
    claimed_length = None

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(self.claimed_length or len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    # A web server on the loopback interface stands in for the release page.
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _OneFileHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()


def test_download_into_cache_then_reuse(hub_dir, tmp_path, monkeypatch, local_server):
    server, url = local_server
    # A small model with "published" weights keeps the file small
    spec = models_module.ModelSpec('convmixer_tiny', 16, 2, kernel_size=3, patch_size=4,
                                   activation='relu', n_classes=5,
                                   weights_file='convmixer_tiny.pth.tar')
    monkeypatch.setitem(MODELS, spec.name, spec)
    monkeypatch.setattr(specs_module, 'OFFICIAL_URL', url)
    torch.manual_seed(0)
    trained = randomize_batch_norms(convmixer(16, 2, kernel_size=3, patch_size=4,
                                              n_classes=5, activation='relu')).eval()
    source = tmp_path / 'served.pth.tar'
    torch.save({'state_dict': convert_state_dict(trained.state_dict(), to='official'),
                'args': argparse.Namespace(lr=0.01)}, source)
    _OneFileHandler.files = {'/' + spec.weights_file: source.read_bytes()}
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        downloaded = create_model('convmixer_tiny', pretrained=True).eval()
        assert torch.equal(downloaded(x), trained(x))
    # Downloaded atomically: the file, and no partial file beside it
    assert [p.name for p in hub_dir.iterdir()] == [spec.weights_file]
    assert (hub_dir / spec.weights_file).read_bytes() == source.read_bytes()
    # Next time the cache answers
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    with torch.no_grad():
        downloaded = create_model('convmixer_tiny', pretrained=True).eval()
        assert torch.equal(downloaded(x), trained(x))


def test_download_cut_short(hub_dir, monkeypatch, local_server):
    server, url = local_server
    monkeypatch.setattr(specs_module, 'OFFICIAL_URL', url)
    _OneFileHandler.files = {'/convmixer_1536_20_ks9_p7.pth.tar': b'x' * 1000}
    _OneFileHandler.claimed_length = 5000
    try:
        with pytest.raises(WeightsUnavailableError,
                           match='could not download convmixer_1536_20_ks9_p7.pth.tar'):
            create_model('convmixer_1536_20', pretrained=True)
    finally:
        _OneFileHandler.claimed_length = None
    assert list(hub_dir.iterdir()) == []


def test_missing_file_on_server(hub_dir, monkeypatch, local_server):
    server, url = local_server
    _OneFileHandler.files = {}
    monkeypatch.setattr(specs_module, 'OFFICIAL_URL', url)
    with pytest.raises(WeightsUnavailableError,
                       match='Not Found.*convmixer_1536_20_ks9_p7.pth.tar'):
        create_model('convmixer_1536_20', pretrained=True)
    assert list(hub_dir.iterdir()) == []
