"""
What a first-time reader trips on in the hand-written pages: headings that
state a misreading as if it were a fact, a Performance page that assumes its
jargon and puts the benchmark's acceptance targets before the answer, and
published numbers or quotations that do not say where they come from.
"""

import json
import re
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / 'docs' / 'pages'
PAPER = 'https://arxiv.org/abs/2201.09792'


def body(name: str) -> str:
    """A page without its front matter and without the tables the benchmark writes (their
    source is the results file they are written from)."""
    text = re.sub(r'\A---\n.*?\n---\n', '', (PAGES / name).read_text(encoding='utf-8'), flags=re.DOTALL)
    return re.sub(r'<!-- results:(\w+) -->.*?<!-- /results:\1 -->', '', text, flags=re.DOTALL)


def blocks(text: str) -> List[str]:
    """Paragraphs, lists and tables: the pieces between blank lines."""
    return [b for b in re.split(r'\n\s*\n', text) if b.strip()]


# -- Misreadings read as misreadings

def test_misreadings_headings_say_they_are_misreadings():
    # In the contents and in search a heading is read alone: "There is no patch embedding"
    # there reads as a fact about ConvMixer, the opposite of what the section says.
    headings = re.findall(r'^## (.+)$', body('misreadings.md'), re.M)
    assert len(headings) >= 7
    *misreadings, last = headings
    assert all(h.startswith('Misreading: ') for h in misreadings), misreadings
    assert last == 'Checking your own version'


# -- The Performance page: the answer first, its words explained, the targets last

PERFORMANCE = body('performance.md')
TERMS = ('NHWC', 'channels_last', 'oneDNN', 'M_MMAP_MAX', 'AVX2', 'AMX')


def test_performance_opens_with_how_fast_on_what():
    machine = json.loads((ROOT / 'benchmarks' / 'results' / 'cpu.json').read_text(encoding='utf-8'))['machine']
    opening = blocks(PERFORMANCE)[1]  # the first paragraph after the title
    assert machine['cpu'] in opening and f"{machine['cpu_cores']}-core" in opening
    assert 'images/s' in opening and '×' in opening


@pytest.mark.parametrize('term', TERMS)
def test_each_term_is_explained_where_it_first_appears(term):
    words = PERFORMANCE.index('**Words used on this page.**')
    words_end = PERFORMANCE.index('\n## ', words)
    first = PERFORMANCE.index(term)
    assert words <= first < words_end, (
        f"{term!r} first appears outside the page's list of the words it uses")
    # and the list says something about it, on the item that names it
    item = next(i for i in PERFORMANCE[words:words_end].split('\n* ') if term in i)
    assert len(item.split()) >= 12


def test_acceptance_targets_come_last():
    targets = PERFORMANCE.index('## What the benchmark must show')
    assert not re.search(r'\btargets?\b|must hold|at least \d+×', PERFORMANCE[:targets])
    assert re.search(r'at least 6×', PERFORMANCE[targets:]) and '10 %' in PERFORMANCE[targets:]
    assert '\n## ' not in PERFORMANCE[targets + 1:], "the targets are the page's last section"


# -- Every published number and quotation names its source

def test_the_blog_post_is_named():
    opening = blocks(body('misreadings.md'))[1]
    assert re.search(r'blog post \*[^*]+\*', opening), "the misreadings page names the blog post it quotes"


PUBLISHED = re.compile(r'\b\d{2}\.\d{1,2} ?%')  # an accuracy someone published: 96.03 %, 81.37 %
SOURCES = ('](http', 'convmixer-cifar10', 'README', 'mmpretrain', 'benchmarks/results/')


@pytest.mark.parametrize('page', sorted(p.name for p in PAGES.glob('*.md')))
def test_published_accuracies_name_their_source(page):
    pieces = blocks(body(page))
    for i, piece in enumerate(pieces):
        for line in piece.splitlines():
            if not PUBLISHED.search(line):
                continue
            # A row of a table may leave its source to the paragraph that introduces the table.
            context = piece if not line.startswith('|') else line + pieces[i - 1]
            assert any(s in context for s in SOURCES), (
                f"{page}: {PUBLISHED.search(line).group(0)} in {line.strip()[:80]!r} names no source")


def test_96_03_cites_the_paper():
    for page in PAGES.glob('*.md'):
        for piece in blocks(body(page.name)):
            for line in piece.splitlines():
                if '96.03' in line:
                    assert PAPER in (line if line.startswith('|') else piece), page.name
