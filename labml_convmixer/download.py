"""
---
title: Weight files
summary: >
  Opening a weights file safely (PyTorch checkpoints and safetensors), telling
  a text file or a damaged download from a checkpoint, and downloading the
  published weights into torch's cache, atomically and with a short timeout.
nav_order: 9
---

# Weight files

[Loading pretrained weights](pretrained.html) is about *names*: which tensor
of a checkpoint goes where in our model. This page is about the *files* the
tensors come in: opening them without running code from them, saying clearly
what is wrong with one that is not a checkpoint, and fetching the published
ones.

**Opening.** A PyTorch checkpoint is a zip archive (PyTorch 1.6 and later)
or, in the older format, a pickle stream. Both begin with fixed bytes, so we
look at the first bytes before handing the file to `torch.load`: a text file,
an HTML error page saved by a failed download or a Git LFS pointer is named as
such, instead of failing deep inside the unpickler with `KeyError: 101` (the
code of the letter `e`, read as a pickle instruction). `torch.load` then runs
with `weights_only=True`, which rebuilds tensors and plain containers only. A
file that holds other Python objects is refused; since unpickling such an
object can run any code, we say what was refused and how to open a file you
trust, and never call it "damaged".

**Downloading.** Downloads go where torch keeps them,
`torch.hub.get_dir()/checkpoints/` (`~/.cache/torch/hub/checkpoints/` unless
`TORCH_HOME` says otherwise), the folder torchvision and timm use too. A file
that is already there is used without touching the network, so on an offline
machine you place the file there yourself; the error message says where.

This file depends only on `torch` and the Python standard library.
"""

import argparse
import http.client
import json
import os
import pickle
import re
import sys
import threading
import urllib.request
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Sequence, Union

import torch

from labml_convmixer.atomic import atomic_write_bytes

# Seconds to wait for a download to start, and then for each piece of it.
# Without a limit, a machine without network can wait for minutes.
DOWNLOAD_TIMEOUT = 10.0


class WeightsUnavailableError(RuntimeError):
    """Weights that are neither in the cache nor downloadable."""


# ## Opening a file
#
# The first bytes of the two formats `torch.load` reads: a zip archive's local
# file header, and the pickle `PROTO` instruction that every pickle since
# protocol 2 starts with.
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'


def _not_a_checkpoint(path: Path, head: bytes) -> ValueError:
    """
    What `path` is instead of a checkpoint, from its first bytes: text is
    quoted (an error page or a pointer file tells its own story), anything
    else is shown as bytes.
    """
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None and text.strip() and '\x00' not in text:
        snippet = ' '.join(text.split())[:60]
        return ValueError(
            f"{path} is not a checkpoint but a text file that begins {snippet!r}: "
            f"pass a .pth, .pth.tar or .safetensors file of weights (a failed download "
            f"may have saved an error page: {_remedy(path)})")
    return ValueError(f"{path} is not a PyTorch checkpoint (it begins with the bytes "
                      f"{head[:8]!r}), or it is damaged: {_remedy(path)}")


# torch's `weights_only` unpickler names what it refused in one of these forms.
_REFUSED = (r'GLOBAL ([\w.]+?)\.? (?:was|whose)', r'unrecognized function (\S+)',
            r'but got (<class [^>]+>)')
# And these say that the pickle itself is broken.
_BROKEN = ('Unsupported operand', 'String is too long', 'persistent_load id')


def _refusal(path: Path, error: Exception) -> ValueError:
    """
    The message for a checkpoint that `weights_only` loading refused: it holds
    objects other than tensors, which only a trusted file may unpickle.
    """
    message = str(error)
    if any(broken in message for broken in _BROKEN):
        return ValueError(f"could not read {path}: its pickle data is damaged; "
                          f"{_remedy(path)}")
    found = (re.search(pattern, message) for pattern in _REFUSED)
    names = [match.group(1) for match in found if match]
    what = f" ({names[0]})" if names else ''
    return ValueError(
        f"{path} holds Python objects other than tensors{what}, which loading with "
        f"weights_only=True refuses because unpickling them can run code; if you trust "
        f"the file, open it with torch.load(path, weights_only=False) and pass the "
        f"result (or its 'state_dict') to load_pretrained")


def _read_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    """
    A `.safetensors` file, the format of timm's weights on the Hugging Face Hub:
    an 8-byte little-endian header length, a JSON header that gives each
    tensor's type, shape and byte range, and then the raw bytes.
    """
    dtypes = {'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16,
              'BF16': torch.bfloat16, 'I64': torch.int64, 'I32': torch.int32,
              'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8,
              'BOOL': torch.bool}
    data = path.read_bytes()
    header_size = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + header_size])
    body = memoryview(data)[8 + header_size:]
    state_dict = OrderedDict()
    for name, info in header.items():
        if name == '__metadata__':
            continue
        start, end = info['data_offsets']
        dtype = dtypes[info['dtype']]
        tensor = (torch.frombuffer(bytearray(body[start:end]), dtype=dtype)
                  if end > start else torch.empty(0, dtype=dtype))
        state_dict[name] = tensor.reshape(info['shape'])
    return state_dict


def _remedy(path: Path) -> str:
    """
    What to do about a damaged file: one in the download cache is fetched
    again; a file of the user's own was copied or saved incompletely, and
    only its source can give it again.
    """
    if Path(path).resolve().is_relative_to(cache_dir().resolve()):
        return "delete it and download it again"
    return "copy or save it again from where it came from"


def open_checkpoint(path: Union[str, os.PathLike]) -> Any:
    """
    ### Open a checkpoint file

    The object stored in `path`, as it was saved: usually a dictionary, with
    the weights somewhere inside it (see
    [`unwrap_checkpoint`](pretrained.html#unwrap_checkpoint)). Training
    checkpoints often store the command-line arguments, an
    `argparse.Namespace`, next to the weights (the official files do); that one
    class is allowed too. Raises `FileNotFoundError` for a missing file and
    `ValueError`, with a one-line message, for everything else.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.suffix == '.safetensors':
        try:
            return _read_safetensors(path)
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise ValueError(f"could not read {path} as safetensors ({e}); "
                             f"the file may be damaged: {_remedy(path)}") from None
    with open(path, 'rb') as f:
        head = f.read(64)
    if not head.startswith((_ZIP_MAGIC, _PICKLE_PROTO)):
        raise _not_a_checkpoint(path, head)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refusal(path, e) from None
    except (RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError) as e:
        lines = str(e).strip().splitlines()
        reason = lines[0][:200] if lines else type(e).__name__
        raise ValueError(f"could not read {path} ({reason}); the file may be "
                         f"incomplete or damaged: {_remedy(path)}") from None


# ## Downloading into the cache

def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / 'checkpoints'


def _open_url(url: str, timeout: float):
    """
    Open `url`, giving up after `timeout` seconds for the whole opening: name
    lookup, connection and the server's answer. The socket timeout alone does
    not cover the name lookup, which can hang for a long time on a machine
    without network, so the opening runs in a thread we stop waiting for.
    """
    result = {}

    def open_it():
        try:
            result['response'] = urllib.request.urlopen(url, timeout=timeout)
        except BaseException as e:  # handed over to the waiting thread
            result['error'] = e

    thread = threading.Thread(target=open_it, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f'no answer within {timeout:g} s')
    if 'error' in result:
        raise result['error']
    return result['response']


def _download(url: str, target: Path, timeout: float):
    """
    Download `url` to `target` [atomically](atomic.html): an interrupted
    download leaves no half-written file under the final name.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f'Downloading {url} to {target}', file=sys.stderr)
    response = _open_url(url, timeout)

    def copy(file):
        expected = response.headers.get('Content-Length')
        size = 0
        with response:
            while chunk := response.read(1 << 20):
                file.write(chunk)
                size += len(chunk)
        if expected is not None and size != int(expected):
            raise OSError(f'download ended after {size} of {expected} bytes')
    atomic_write_bytes(target, copy)


def cached_download(url: str, file_name: str, alternatives: Sequence[str] = ()) -> Path:
    """
    ### The path of a file in the cache

    `file_name` in the cache, downloaded from `url` if it is not there. A file
    named in `alternatives` (the same weights from another source, such as
    mmpretrain's copy) is used too if present.

    Fails within about `DOWNLOAD_TIMEOUT` seconds when there is no network,
    with a one-line message that says what to download from where, and where
    to put it.
    """
    directory = cache_dir()
    for name in (file_name, *alternatives):
        if name and (directory / name).is_file():
            return directory / name
    target = directory / file_name
    try:
        _download(url, target, DOWNLOAD_TIMEOUT)
    except (OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, 'reason', None) or e
        raise WeightsUnavailableError(
            f"could not download {file_name} ({reason}); download {url} "
            f"and save it as {target}") from None
    return target


__all__ = ['DOWNLOAD_TIMEOUT', 'WeightsUnavailableError', 'open_checkpoint',
           'cache_dir', 'cached_download']
