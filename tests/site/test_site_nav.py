"""
The reading order: `mkdocs.yml`'s `nav` names every source page, by file or
by folder (docs/tooling/litnav.py); the site leads with the paper, then the
recipes, then using it, then how it runs; the home page and the footer's
"Next" follow the same order.
"""

import re
from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError

from litnav import NavPage, expand_nav

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p.relative_to(ROOT).as_posix() for folder in ('labml_convmixer', 'experiments', 'benchmarks')
                 for p in (ROOT / folder).rglob('*.py'))

PAGES = [NavPage('pkg/__init__.md', 'Package'), NavPage('pkg/model.md', 'Model'),
         NavPage('pkg/extra.md', 'Extra'), NavPage('pkg/sub/a.md', 'A')]


def test_files_and_folders_expand_in_folder_order():
    nav = [{'Home': 'index.md'}, {'First': ['pkg/model.py']},
           {'Rest': ['other.md', {'The package': 'pkg/'}, 'pkg/sub/']}]
    assert expand_nav(nav, PAGES) == [
        {'Home': 'index.md'}, {'First': [{'Model': 'pkg/model.md'}]},
        {'Rest': ['other.md', {'The package': [{'Package': 'pkg/__init__.md'}, {'Extra': 'pkg/extra.md'}]},
                  {'A': 'pkg/sub/a.md'}]}]


def test_a_page_in_no_section_fails_with_one_line():
    # A new sub-folder (experiments/runner/) needs its line in the nav
    with pytest.raises(PluginError) as info:
        expand_nav([{'Code': ['pkg/']}], PAGES)
    assert str(info.value) == ("mkdocs.yml nav: pkg/sub/a.py in no section; name the file, or its folder "
                               "(`- pkg/sub/`), where it belongs")


@pytest.mark.parametrize('nav, message', [
    ([{'A': ['pkg/model.py']}, {'B': ['pkg/model.py', 'pkg/', 'pkg/sub/']}], 'pkg/model.py is in two sections'),
    ([{'A': ['pkg/']}, {'B': ['pkg/', 'pkg/sub/']}], 'the folder pkg/ is in two sections'),
    ([{'A': ['pkg/nothing.py', 'pkg/', 'pkg/sub/']}], 'pkg/nothing.py is not a Python file of the project'),
    ([{'A': ['pkg/', 'pkg/sub/', 'none/']}], 'the folder none/ has no Python files'),
])
def test_a_page_in_two_sections_or_a_wrong_name_fails(nav, message):
    with pytest.raises(PluginError, match=re.escape(message)):
        expand_nav(nav, PAGES)


def _nav_links(html: str):
    nav = html[html.find('md-nav--primary'):]
    nav = nav[:nav.find('<div class="md-content"')]
    return list(dict.fromkeys(re.findall(r'<a href="([^"#]+\.html)"[^>]*class="md-nav__link', nav)))


def test_the_site_leads_with_the_paper(site_build):
    home = (site_build.site / 'index.html').read_text(encoding='utf-8')
    sections = re.findall(r'<label class="md-nav__link" for="__nav_\d+" id="__nav_\d+_label"[^>]*>\s*'
                          r'<span class="md-ellipsis">\s*([^<]+?)\s*</span>', home)
    assert sections[:4] == ['The paper', 'Train it', 'Use it', 'How it runs']
    links = _nav_links(home)
    assert links[:3] == ['index.html', 'labml_convmixer/model.html', 'experiments/cifar10.html']
    assert links[3:5] == ['experiments/imagenet.html', 'experiments/dashboard/__init__.html']
    using = links[5:links.index('reproduce.html') + 1]
    assert using == ['use.html', 'labml_convmixer/models.html', 'labml_convmixer/pretrained.html',
                     'labml_convmixer/backbone.html', 'labml_convmixer/variations.html',
                     'tweetable.html', 'misreadings.html', 'reproduce.html']
    # Each source page once, all of them
    assert sorted(link for link in links if link.endswith('.html') and '/' in link) == \
        sorted(s[:-3] + '.html' for s in SOURCES)
    # The machinery is grouped in a section of its own, not a long list of equal entries
    assert sections == ['The paper', 'Train it', 'Use it', 'How it runs']
    groups = re.findall(r'id="__nav_5_\d+_label"[^>]*>\s*<span class="md-ellipsis">\s*([^<]+?)\s*</span>', home)
    assert groups == ['The package', 'The experiments', 'The run machinery', 'The data sets', 'The dashboard',
                      'The benchmark']


def test_home_page_reads_in_the_navigation_order(site_build):
    home = (site_build.site / 'index.html').read_text(encoding='utf-8')
    reading = home[home.find('id="reading-this-site"'):home.find('</article>')]
    listed = list(dict.fromkeys(re.findall(r'<a href="([^"#]+\.html)"', reading)))
    assert listed == _nav_links(home)[1:]
    assert 'reproduce.html' in listed


@pytest.mark.parametrize('page, after', [
    ('index.html', 'labml_convmixer/model.html'),
    ('labml_convmixer/model.html', 'experiments/cifar10.html'),
    ('experiments/cifar10.html', 'experiments/imagenet.html'),
    ('experiments/imagenet.html', 'experiments/dashboard/__init__.html'),
    ('experiments/dashboard/__init__.html', 'use.html'),
    ('reproduce.html', 'performance.html'),
])
def test_next_goes_where_a_reader_goes_next(site_build, page, after):
    html = (site_build.site / page).read_text(encoding='utf-8')
    found = re.search(r'<a href="([^"]+)" class="md-footer__link md-footer__link--next"', html)
    assert found, page
    target = (site_build.site / page).parent / found.group(1)
    assert target.resolve() == (site_build.site / after).resolve()
