"""
The paper's 280-character ConvMixer computes the same function as our
modules, given the same weights (the claim of the "tweetable" page). The tweet
that runs here is the one the page shows, read from the page.
"""

import re
from pathlib import Path

import pytest
import torch
from torch.nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, GELU, Linear, Sequential

from labml_convmixer.model import convmixer

ROOT = Path(__file__).resolve().parents[2]


PAGE = ROOT / 'docs' / 'pages' / 'tweetable.md'
# The published definition, as the official README prints it (github.com/locuslab/convmixer,
# commit 4704811 of 24 January 2022 and later); the page must show exactly this.
PUBLISHED = (
    "def ConvMixer(h,d,k,p,n):\n"
    " S,C,A=Sequential,Conv2d,lambda x:S(x,GELU(),BatchNorm2d(h))\n"
    " R=type('',(S,),{'forward':lambda s,x:s[0](x)+x})\n"
    " return S(A(C(3,h,p,p)),*[S(R(A(C(h,h,k,groups=h,padding=k//2))),A(C(h,h,1))) for i in range(d)],"
    "AdaptiveAvgPool2d(1),Flatten(),Linear(h,n))\n"
)
TORCH_NN = dict(AdaptiveAvgPool2d=AdaptiveAvgPool2d, BatchNorm2d=BatchNorm2d, Conv2d=Conv2d, Flatten=Flatten,
                GELU=GELU, Linear=Linear, Sequential=Sequential)


def page_block(marker: str) -> str:
    """The first fenced code block of the page after `marker`."""
    page = PAGE.read_text(encoding='utf-8')
    found = re.search(re.escape(marker) + r'.*?```[^\n]*\n(.*?)```', page, re.DOTALL)
    assert found, f"no code block after {marker!r} in {PAGE.name}"
    return found.group(1)


def run(source: str, name: str):
    """Run a block of the page with the names of `torch.nn`, and return the function `name` it defines."""
    namespace = dict(TORCH_NN)
    exec(compile(source, PAGE.name, 'exec'), namespace)
    return namespace[name]


def test_page_shows_the_published_tweet():
    shown = page_block('<!-- the-tweet')
    assert shown == PUBLISHED
    assert len(shown.strip()) <= 280


def test_page_names_the_source_and_counts_the_tweet():
    # "Exactly as printed" is a quotation: the page says where it is printed, and its
    # character count is the block's.
    page = PAGE.read_text(encoding='utf-8')
    opening = page[:page.index('<!-- the-tweet')]
    assert 'https://github.com/locuslab/convmixer' in opening and 'README' in opening
    assert '4704811' in opening
    count = re.search(r'(\d+)\s+characters of PyTorch', opening)
    assert count and int(count.group(1)) == len(PUBLISHED.strip())


def ConvMixer(h, d, k, p, n):
    """The tweet as the page shows it."""
    return run(page_block('<!-- the-tweet'), 'ConvMixer')(h, d, k, p, n)


def tweet_key(key: str, d: int) -> str:
    """Our state-dict key → the tweet's (the mapping in the table of the page)."""
    parts = key.split('.')
    if parts[0] == 'patch_emb':
        return {'conv': '0.0', 'norm': '0.2'}[parts[1]] + '.' + '.'.join(parts[2:])
    if parts[0] == 'conv_mixer_layers':
        i = int(parts[1])
        prefix = {'depth_wise_conv': '0.0.0', 'norm1': '0.0.2', 'point_wise_conv': '1.0', 'norm2': '1.2'}[parts[2]]
        return f'{1 + i}.{prefix}.' + '.'.join(parts[3:])
    assert parts[:2] == ['classification', 'linear']
    return f'{d + 3}.' + '.'.join(parts[2:])


def randomize(model: torch.nn.Module):
    """Random weights and batch-norm statistics, so that every parameter matters."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith('num_batches_tracked'):
                continue
            if name.endswith('running_var'):
                tensor.uniform_(0.5, 2.0)
            else:
                tensor.normal_(0, 0.3)


def test_tweet_and_ours_compute_the_same_function():
    torch.manual_seed(0)
    h, d, k, p, n = 16, 3, 5, 2, 10
    ours = convmixer(h, d, kernel_size=k, patch_size=p, n_classes=n)
    tweet = ConvMixer(h, d, k, p, n)
    randomize(ours)
    mapped = {tweet_key(key, d): value for key, value in ours.state_dict().items()}
    # Same parameters, under different names: every key maps to exactly one of the tweet's
    assert set(mapped) == set(tweet.state_dict())
    tweet.load_state_dict(mapped, strict=True)
    ours.eval()
    tweet.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = tweet(x)
        got = ours(x)
    assert got.shape == (4, n)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_even_kernel_breaks_the_tweet_but_not_ours():
    # `padding=k//2` grows the grid by one for even k, so the residual addition fails.
    with pytest.raises(RuntimeError, match='size of tensor'):
        ConvMixer(8, 1, 4, 2, 10)(torch.randn(1, 3, 16, 16))
    assert convmixer(8, 1, kernel_size=4, patch_size=2, n_classes=10)(torch.randn(1, 3, 16, 16)).shape == (1, 10)


def test_spread_out_version_on_the_page_is_the_tweet():
    spread_out_convmixer = run(page_block('## Spread out'), 'tweet_convmixer')
    torch.manual_seed(1)
    tweet = ConvMixer(8, 2, 3, 4, 5)
    randomize(tweet)
    spread_out = spread_out_convmixer(8, 2, 3, 4, 5)
    spread_out.load_state_dict(tweet.state_dict(), strict=True)
    tweet.eval()
    spread_out.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(spread_out(x), tweet(x))
