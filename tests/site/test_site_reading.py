"""
What a newcomer trips on when reading the site: commands that wrap at their
hyphens, permalinks that never show, formulas cut off, search that ranks a
passing mention above the explanation or glues words together, a not-found
page that only works at the server's root, an empty sitemap, links in the
code that look like the code around them, wide tables on a phone with no
hint, and one symbol written two ways. Screenshots go to
`artifacts/screenshots/reading-*.png`.
"""

import functools
import http.server
import json
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import test_site_browser as shared
from conftest import REPO_URL
from litsite import published_address, relative_not_found_page
from litsearch import section_entries
from test_site_browser import MODEL_PAGE, SCREENSHOTS, Visit, assert_local

browser = shared.browser
server = shared.server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope='module')
def screenshots_folder():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


# -- One repository address, and the site's address from it

def test_the_site_address_follows_from_the_repository(site_build):
    owner, name = urlsplit(REPO_URL).path.strip('/').split('/')
    assert published_address(REPO_URL) == f'https://{owner.lower()}.github.io/{name}/'
    assert published_address('https://example.org/git/x') is None
    sitemap = (site_build.site / 'sitemap.xml').read_text(encoding='utf-8')
    locations = re.findall(r'<loc>([^<]+)</loc>', sitemap)
    assert len(locations) > 30
    assert f'{published_address(REPO_URL)}labml_convmixer/model.html' in locations
    home = (site_build.site / 'index.html').read_text(encoding='utf-8')
    # The header names the repository as OWNER/NAME, from the same setting
    assert re.search(rf'md-source__repository">\s*{owner}/{name}\s*<', home)
    # The address is written in mkdocs.yml once, and the README says how to set it
    config = (ROOT / 'mkdocs.yml').read_text(encoding='utf-8')
    assert config.count(f'{owner}/{name}') == 1
    assert '`repo_url` in\n`mkdocs.yml`' in (ROOT / 'README.md').read_text(encoding='utf-8')


def test_not_found_page_has_no_paths_from_the_server_root(site_build):
    html = (site_build.site / '404.html').read_text(encoding='utf-8')
    assert not re.findall(r'\s(?:href|src)="/(?!/)', html)
    assert 'href="assets/literate.css"' in html
    # The rewrite itself, at another site path
    rewritten = relative_not_found_page('<head><link href="/x/assets/a.css"><a href="/x/index.html">',
                                        'https://example.org/x/')
    assert '<link href="assets/a.css">' in rewritten and '<a href="index.html">' in rewritten
    assert 'var root="/x/"' in rewritten


class _SubPathHandler(http.server.SimpleHTTPRequestHandler):
    """The site under `/labml_convmixer/`, with `404.html` for any missing page, as GitHub Pages does."""

    prefix = '/labml_convmixer/'

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split('?')[0]
        target = Path(self.directory) / path[len(self.prefix):] if path.startswith(self.prefix) else None
        if target is not None and target.is_file():
            self.path = '/' + path[len(self.prefix):]
            return super().do_GET()
        body = (Path(self.directory) / '404.html').read_bytes()
        self.send_response(404)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


NOT_FOUND_IS_STYLED = '''() => {
    const logo = document.querySelector('.md-header .md-logo img, .md-header .md-logo svg');
    return [getComputedStyle(document.querySelector('.md-header')).position,
            logo ? logo.getBoundingClientRect().height : 0];
}'''


@pytest.mark.parametrize('where', ['disk', 'published path'])
def test_not_found_page_is_styled_from_disk_and_under_the_published_path(browser, site_build, where):
    httpd = None
    if where == 'disk':
        url = (site_build.site / '404.html').as_uri()
    else:
        handler = functools.partial(_SubPathHandler, directory=str(site_build.site))
        httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f'http://127.0.0.1:{httpd.server_address[1]}/labml_convmixer/experiments/no/such/page.html'
    context = browser.new_context(viewport={'width': 1280, 'height': 900})
    page = context.new_page()
    try:
        page.goto(url, wait_until='load')
        position, logo = page.evaluate(NOT_FOUND_IS_STYLED)
        # The theme's style sheet is in: a sticky header with a logo of icon size
        assert position == 'sticky' and 0 < logo <= 48, (position, logo)
        assert page.locator('h1').first.inner_text().startswith('404')
        page.screenshot(path=str(SCREENSHOTS / f'reading-404-{where.replace(" ", "-")}-1280.png'))
        # Its links lead into the site
        home = page.locator('a.md-header__button.md-logo').get_attribute('href')
        assert home == 'index.html'
    finally:
        context.close()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()


# -- Commands and flags never split at their hyphens

# Every `--flag` or `-f` in inline code whose characters lie on more than one line
SPLIT_FLAGS = '''() => {
    const split = [];
    document.querySelectorAll('.md-typeset code').forEach((code) => {
        if (code.closest('pre')) return;
        const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
        const nodes = [];
        let text = '';
        while (walker.nextNode()) { nodes.push([walker.currentNode, text.length]); text += walker.currentNode.data; }
        for (const match of text.matchAll(/(?<![\\w-])--?[A-Za-z][\\w-]*/g)) {
            const range = document.createRange();
            const at = (offset) => {
                const [node, start] = nodes.filter(([, s]) => s <= offset).pop();
                return [node, offset - start];
            };
            range.setStart(...at(match.index));
            range.setEnd(...at(match.index + match[0].length - 1));
            range.setEnd(range.endContainer, range.endOffset + 1);
            const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0)
                .map((r) => Math.round(r.top)));
            if (tops.size > 1) split.push(match[0]);
        }
    });
    return split;
}'''
FLAGS_IN_CODE = '''() => [...document.querySelectorAll('.md-typeset code')].filter((c) => !c.closest('pre'))
    .map((c) => c.textContent).join(' ').match(/(?<![\\w-])--[A-Za-z][\\w-]*/g).length'''


@pytest.mark.parametrize('path', ['reproduce.html', 'experiments/cifar10.html'])
@pytest.mark.parametrize('width', [1280, 390])
def test_no_flag_is_split_across_lines(browser, server, path, width):
    visit = Visit(browser, server + path, width, 900 if width > 400 else 844)
    try:
        assert visit.page.evaluate(FLAGS_IN_CODE) > 5
        assert visit.page.evaluate(SPLIT_FLAGS) == []
        # ... and the page is no wider than the screen for it
        assert visit.page.evaluate('document.documentElement.scrollWidth') <= width
        if path == 'reproduce.html':
            visit.page.locator('table').first.scroll_into_view_if_needed()
            visit.page.screenshot(path=str(SCREENSHOTS / f'reading-reproduce-{width}.png'))
        assert_local(visit, server)
    finally:
        visit.close()


def test_the_flag_check_sees_a_split_flag(browser, server):
    # The same check on inline code that may break anywhere, in a narrow box
    visit = Visit(browser, server + 'reproduce.html', 1280)
    try:
        visit.page.evaluate('''() => {
            const p = document.createElement('p');
            p.style.width = '6ch';
            p.innerHTML = '<code style="word-break: break-all">--data-dir --eval-only</code>';
            document.querySelector('article').prepend(p);
        }''')
        assert visit.page.evaluate(SPLIT_FLAGS)
    finally:
        visit.close()


# -- Section permalinks

def test_section_permalink_shows_on_hover(browser, server):
    visit = Visit(browser, server + MODEL_PAGE, 1280)
    page = visit.page
    try:
        section = page.locator('#ConvMixerLayer')
        link = section.locator('.lit-permalink')
        assert link.evaluate('(el) => getComputedStyle(el).opacity') == '0'
        section.locator('.lit-docs').hover()
        page.wait_for_timeout(300)
        assert link.evaluate('(el) => getComputedStyle(el).opacity') == '1'
        assert link.is_visible() and link.get_attribute('href') == '#ConvMixerLayer'
        # It sits in the prose column, clear of the code
        box, docs = link.bounding_box(), section.locator('.lit-docs').bounding_box()
        assert docs['x'] <= box['x'] and box['x'] + box['width'] <= docs['x'] + docs['width'] + 1
        page.screenshot(path=str(SCREENSHOTS / 'reading-permalink-1280.png'))
    finally:
        visit.close()


# -- Display math fits the prose column

PAGES_WITH_DISPLAY_MATH = ['index.html', MODEL_PAGE, 'experiments/imagenet_recipes.html']
CLIPPED_FORMULAS = '''() => [...document.querySelectorAll('.katex-display')]
    .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent.slice(0, 40))'''


def test_no_formula_is_clipped_at_1280(browser, server, site_build):
    pages = [p.relative_to(site_build.site).as_posix() for p in sorted(site_build.site.rglob('*.html'))
             if 'katex-display' in p.read_text(encoding='utf-8')]
    assert set(PAGES_WITH_DISPLAY_MATH) <= set(pages)
    context = browser.new_context(viewport={'width': 1280, 'height': 900})
    page = context.new_page()
    try:
        for path in pages:
            page.goto(server + path, wait_until='networkidle')
            assert page.evaluate(CLIPPED_FORMULAS) == [], path
            # Made smaller to fit, the formula stays readable: no smaller than 60 %
            smallest = page.evaluate('''() => Math.min(...[...document.querySelectorAll('.katex-display')]
                .map((el) => parseFloat(getComputedStyle(el).fontSize)))''')
            assert smallest >= 0.6 * 20 * 0.8, (path, smallest)
        page.goto(server + MODEL_PAGE, wait_until='networkidle')
        page.locator('.katex-display').first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'reading-model-formula-1280.png'))
        page.goto(server + 'experiments/imagenet_recipes.html', wait_until='networkidle')
        page.locator('.katex-display').first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'reading-imagenet-formula-1280.png'))
        # On a phone a formula keeps at least 80 % of its size, and scrolls in its box beyond that
        page.set_viewport_size({'width': 390, 'height': 844})
        page.goto(server + 'experiments/imagenet_recipes.html', wait_until='networkidle')
        formula = page.locator('.katex-display').first
        assert float(formula.evaluate('(el) => parseFloat(getComputedStyle(el).fontSize)')) >= 0.8 * 16 - 0.1
        assert formula.evaluate('(el) => el.scrollWidth > el.clientWidth')
        assert formula.evaluate('(el) => getComputedStyle(el).overflowX') == 'auto'
        formula.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'reading-imagenet-formula-390.png'))
    finally:
        context.close()


# -- Search: the definition and the explanation first, words kept apart

def test_search_entries_keep_words_apart():
    html = ('<div class="lit-section" id="s"><div class="lit-docs"><p>it gives <em>exactly</em> the '
            'numbers, <strong>naming the file.</strong> We</p><ul><li>one</li><li>two</li></ul></div></div>')
    entry = section_entries(html, 'p.html', 'P', {}, {})[1]
    text = re.sub(r'<[^>]+>', '', entry['text'])
    assert 'gives exactly the numbers' in text and 'file. We' in text and 'one two' in text


def test_no_glued_words_in_the_search_index(site_build):
    index = json.loads((site_build.site / 'search' / 'search_index.json').read_text(encoding='utf-8'))
    text = ' '.join(doc['text'] for doc in index['docs'])
    assert 'gives exactly the' in text and 'givesexactly' not in text
    assert 'file.We' not in text


def _search(page, query: str):
    page.locator('input.md-search__input').click()
    page.keyboard.type(query)
    page.wait_for_selector('.md-search-result__item', timeout=10000)
    page.wait_for_timeout(500)
    # Read the list in one step: the search may still be redrawing it
    hrefs = page.eval_on_selector_all('.md-search-result__item a',
                                      'links => links.map(a => a.getAttribute("href"))')
    return [href.split('?')[0] + ('#' + href.split('#')[1] if '#' in href else '') for href in hrefs]


def test_search_ranks_the_explanation_first(browser, server):
    visit = Visit(browser, server + 'index.html', 1280)
    page = visit.page
    try:
        hits = _search(page, 'RandAugment')
        # The page that explains it, not a constant whose name starts with the word
        assert hits[0].endswith('experiments/datasets/gpu_augment.html'), hits[:3]
        assert not any('RANDAUGMENT_CHECKS' in h for h in hits[:3]), hits[:3]
        teaser = page.locator('.md-search-result__item').first.inner_text()
        assert 'RandAugment' in teaser
        page.screenshot(path=str(SCREENSHOTS / 'reading-search-randaugment-1280.png'))
        page.locator('input.md-search__input').fill('')
        hits = _search(page, 'point_wise_conv')
        # The model page, its definition first, then the page's other sections
        assert hits[0].endswith(MODEL_PAGE) and hits[1].endswith('#sec-channel-mixing-one-linear-map'), hits[:3]
        assert all(MODEL_PAGE in h for h in hits[:4]), hits[:4]
        assert_local(visit, server)
    finally:
        visit.close()


# -- Links in the code look like links; clicking any other name highlights it

def _style(locator, prop: str) -> str:
    return locator.evaluate(f'(el) => getComputedStyle(el).{prop}')


def test_definition_links_are_visible_and_identifiers_highlight(browser, server):
    visit = Visit(browser, server + 'experiments/cifar10.html', 1280)
    page = visit.page
    try:
        link = page.locator('.lit-code a.lit-ref[data-sym="convmixer"]').first
        plain = page.locator('.lit-code span.n[data-sym="torch"]').first
        assert _style(link, 'color') != _style(plain, 'color')
        assert 'underline' in _style(link, 'textDecorationLine')
        assert _style(link, 'cursor') == 'pointer' and _style(plain, 'cursor') != 'pointer'
        # A plain identifier highlights its uses on the page
        plain.click()
        assert page.locator('.lit-hl').count() == page.locator('.lit-code [data-sym="torch"]').count() > 1
        link.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'reading-cifar10-links-1280.png'))
        # A link goes to the definition
        link.click()
        page.wait_for_load_state('load')
        assert page.url.endswith('labml_convmixer/factory.html#convmixer')
    finally:
        visit.close()


def test_home_page_promises_what_the_code_does(site_build):
    home = (site_build.site / 'index.html').read_text(encoding='utf-8')
    text = ' '.join(re.sub(r'<[^>]+>', '', home).split())
    assert 'a name in the link colour goes to its definition' in text
    assert 'click any other name to highlight its uses on the page' in text


# -- Wide tables on a phone say that they scroll

def test_wide_table_on_a_phone_says_it_scrolls(browser, server):
    visit = Visit(browser, server + 'reproduce.html', 390, 844)
    page = visit.page
    try:
        wrap = page.locator('.md-typeset__scrollwrap').first
        assert wrap.evaluate('(el) => el.scrollWidth > el.clientWidth')
        hint = page.locator('.md-typeset__scrollwrap + .lit-scroll-hint').first
        assert hint.is_visible() and 'scroll it sideways' in hint.inner_text()
        hint.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'reading-reproduce-table-390.png'))
        # At 1280 px the table fits, and the hint is hidden
        page.set_viewport_size({'width': 1280, 'height': 900})
        page.wait_for_timeout(200)
        if not wrap.evaluate('(el) => el.scrollWidth > el.clientWidth'):
            assert not hint.is_visible()
    finally:
        visit.close()


# -- One way to write the layer index

LAYER_INDEX_RE = re.compile(r"z'?_\{?\\?(ell|l)\b")


def _layer_indices(path: Path):
    return set(LAYER_INDEX_RE.findall(path.read_text(encoding='utf-8')))


@pytest.mark.parametrize('path', [
    'docs/pages/index.md',
    'labml_convmixer/model.py',
])
def test_the_layer_index_is_written_as_ell(path):
    found = _layer_indices(ROOT / path)
    assert found == {'ell'}, f"{path} writes the layer index as {sorted(found)}"
