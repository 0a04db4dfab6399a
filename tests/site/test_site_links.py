"""
Links from code to definitions, in the built site: `x.attr` links only where
the class of `x` is known to be the project's own, never by the attribute's
name alone; and where each page says its file lives.
"""

import re
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]


def code_line_html(site: Path, source: str, snippet: str) -> List[str]:
    """The rendered HTML of every code line of `source` whose text contains `snippet`."""
    lines = (ROOT / source).read_text(encoding='utf-8').split('\n')
    numbers = [i for i, line in enumerate(lines, 1) if snippet in line]
    assert numbers, f"{source} no longer has {snippet!r}: update this test"
    html = (site / source).with_suffix('.html').read_text(encoding='utf-8')
    found = []
    for ln in numbers:
        match = re.search(rf'<span class="lit-ln" data-ln="{ln}"></span>(.*)', html)
        assert match, f"{source}:{ln} is not on its page"
        found.append(match.group(1))
    return found


def links(line_html: str) -> List[str]:
    return re.findall(r'<a class="lit-ref[^"]*" href="([^"]*)"', line_html)


# `x.attr` whose receiver is not a project class: a set, a module attribute
# chain, argparse's parser, labml's logger, the base class of an override.
# Each once linked to a project method or attribute of the same name.
@pytest.mark.parametrize('source,snippet,attr', [
    ('labml_convmixer/backbone.py', 'taken.add(i % n)', 'add'),
    ('benchmarks/train_speed.py', 'torch.utils.data.DataLoader', 'data'),
    ('benchmarks/train_speed.py', 'parser.error(', 'error'),
    ('experiments/runner/launch.py', 'logger.log(', 'log'),
    ('experiments/runner/reports.py', 'logger.log(', 'log'),
    ('experiments/datasets/cifar10_data.py', 'super().find_class(', 'find_class'),
])
def test_no_link_by_attribute_name_alone(site_build, source, snippet, attr):
    for line in code_line_html(site_build.site, source, snippet):
        wrong = [href for href in links(line) if href.endswith('.' + attr)]
        assert not wrong, f"{source}: `{snippet}` links to {wrong}"


# Receivers whose class is known: a parameter annotated with a subclass of a
# project class from another file, and plain names of the module.
@pytest.mark.parametrize('source,snippet,target', [
    ('experiments/cifar10.py', 'return c.prepare(model)', 'runner/trainer.html#TrainerConfigs.prepare'),
    ('labml_convmixer/model.py', 'clone_module_list(conv_mixer_layer', '#clone_module_list'),
    ('labml_convmixer/variations.py', '(True, True): PreActBNFirstConvMixerLayer}',
     '#PreActBNFirstConvMixerLayer'),
])
def test_links_where_the_class_is_known(site_build, source, snippet, target):
    for line in code_line_html(site_build.site, source, snippet):
        assert any(href.endswith(target) for href in links(line)), (source, snippet, links(line))


def test_every_annotated_page_says_where_its_file_is(site_build):
    html = (site_build.site / 'labml_convmixer' / 'model.html').read_text(encoding='utf-8')
    # A copy of the file next to the page, to download, identical to the source
    assert re.search(r'<a class="lit-download" href="model.py" download', html)
    copy = site_build.site / 'labml_convmixer' / 'model.py'
    assert copy.read_text(encoding='utf-8') == (ROOT / 'labml_convmixer' / 'model.py').read_text(encoding='utf-8')
    # And the file in the repository that mkdocs.yml names
    repo = re.search(r'^repo_url: (\S+)', (ROOT / 'mkdocs.yml').read_text(encoding='utf-8'), re.M).group(1)
    assert f'href="{repo}/blob/main/labml_convmixer/model.py"' in html
    # The model page links the authors' code
    assert 'https://github.com/locuslab/convmixer' in html
    assert 'https://github.com/locuslab/convmixer-cifar10' in html


@pytest.mark.parametrize('page', ['index.html', 'labml_convmixer/model.html', 'performance.html', '404.html'])
def test_meta_description_is_whole(site_build, page):
    html = (site_build.site / page).read_text(encoding='utf-8')
    match = re.search(r'<meta name="description" content="([^"]*)"\s*/?>', html)
    assert match, f"{page}: no description meta tag, or one that a quote cuts short"
    assert len(match.group(1)) > 40, match.group(1)
