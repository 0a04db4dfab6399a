"""
The site in a real browser: Debian's Chromium driven by Playwright, the built
site served on 127.0.0.1. Screenshots go to `artifacts/screenshots/`, with
the page weight of the model page in `page-weight.json`.
"""

import functools
import http.server
import json
import os
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
SCREENSHOTS = ROOT / 'artifacts' / 'screenshots'
MODEL_PAGE = 'labml_convmixer/model.html'
# A section with prose beside its code (not the introduction, not code alone)
TWO_COLUMNS = '.lit-section:not(.lit-code-only):not(.lit-docs-only)'

if not Path(CHROMIUM).exists():
    if os.environ.get('CI'):
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium`", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI runs this test",
                allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def server(site_build):
    handler = functools.partial(_QuietHandler, directory=str(site_build.site))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope='module')
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A page opened at a given width, with its requests and console errors recorded."""

    def __init__(self, browser, url: str, width: int, height: int = 900):
        self.context = browser.new_context(viewport={'width': width, 'height': height})
        self.page = self.context.new_page()
        self.requests, self.responses, self.errors = [], [], []
        self.page.on('request', lambda r: self.requests.append(r.url))
        self.page.on('response', lambda r: self.responses.append(r))
        self.page.on('console', lambda m: m.type == 'error' and self.errors.append(m.text))
        self.page.on('pageerror', lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until='networkidle')

    def box(self, selector: str):
        return self.page.locator(selector).first.bounding_box()

    def close(self):
        self.context.close()


def assert_local(visit: Visit, server: str):
    outside = [u for u in visit.requests if not u.startswith(server) and not u.startswith('data:')]
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert not visit.errors, f"console errors: {visit.errors}"


def visible_text_outside_math_and_code(visit: Visit) -> str:
    return visit.page.evaluate('''() => {
        const article = document.querySelector('article').cloneNode(true);
        article.querySelectorAll('pre, code, .katex, script, style').forEach((el) => el.remove());
        return article.textContent;
    }''')


def test_model_page_wide(browser, server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visit = Visit(browser, server + MODEL_PAGE, 1280)
    try:
        docs, code = visit.box(f'{TWO_COLUMNS} >> .lit-docs'), visit.box(f'{TWO_COLUMNS} >> .lit-code')
        # Side by side: the code starts right of the prose, at the same height,
        # and takes at least half of the two columns.
        assert code['x'] >= docs['x'] + docs['width'] - 1
        assert abs(code['y'] - docs['y']) < 40
        assert code['width'] >= (code['x'] + code['width'] - docs['x']) / 2
        # Math rendered at build time; no delimiters left in the prose
        assert visit.page.locator('.katex').count() > 10
        assert '$' not in visible_text_outside_math_and_code(visit)
        # Copy buttons on the code, and the theme toggle
        assert visit.page.locator('.lit-code button[data-md-type="copy"]').count() > 10
        visit.page.screenshot(path=str(SCREENSHOTS / 'model-1280.png'))
        assert_local(visit, server)
        _save_page_weight(visit)
    finally:
        visit.close()


def _save_page_weight(visit: Visit):
    """Bytes of each kind of file the model page loaded, from the network log."""
    weight = {}
    for response in visit.responses:
        kind = response.headers.get('content-type', 'other').split(';')[0]
        weight.setdefault(kind, 0)
        weight[kind] += len(response.body())
    (SCREENSHOTS / 'page-weight.json').write_text(json.dumps(weight, indent=1, sort_keys=True))
    assert weight.get('text/html', 0) > 0 and weight.get('text/css', 0) > 0


# Code blocks whose lines do not fit their box, so that they scroll sideways
SCROLLING_CODE = '''() => [...document.querySelectorAll('.lit-code pre > code')]
    .filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent.split('\\n')[0])'''
# Code blocks whose copy button covers part of the first line's text
COPY_BUTTON_ON_TEXT = '''() => [...document.querySelectorAll('.lit-code .md-code__nav')].filter((nav) => {
    const line = nav.closest('.highlight').querySelector('.lit-line');
    const range = document.createRange();
    range.selectNodeContents(line);
    const button = nav.getBoundingClientRect();
    return [...range.getClientRects()].some((r) => r.width > 0 && r.right > button.left
        && r.left < button.right && r.bottom > button.top && r.top < button.bottom);
}).length'''


@pytest.mark.parametrize('width', [1280, 1440, 1920])
def test_model_code_fits_a_laptop_screen(browser, server, width):
    visit = Visit(browser, server + MODEL_PAGE, width)
    try:
        assert visit.page.locator('.lit-code pre > code').count() > 20
        assert visit.page.evaluate(SCROLLING_CODE) == []
        assert visit.page.evaluate(COPY_BUTTON_ON_TEXT) == 0
        if width == 1280:
            visit.page.locator('#convmixer').scroll_into_view_if_needed()
            visit.page.screenshot(path=str(SCREENSHOTS / 'model-1280-convmixer.png'))
    finally:
        visit.close()


def test_model_page_phone(browser, server):
    visit = Visit(browser, server + MODEL_PAGE, 390, 844)
    try:
        docs, code = visit.box(f'{TWO_COLUMNS} >> .lit-docs'), visit.box(f'{TWO_COLUMNS} >> .lit-code')
        # Stacked: the code comes below its prose
        assert code['y'] >= docs['y'] + docs['height'] - 1
        # Long lines scroll sideways instead of wrapping
        wraps = visit.page.evaluate('''() => [...document.querySelectorAll('.lit-code pre > code')]
            .map((c) => getComputedStyle(c).whiteSpace)''')
        assert set(wraps) == {'pre'}
        scrolls = visit.page.evaluate('''() => [...document.querySelectorAll('.lit-code pre > code')]
            .some((c) => c.scrollWidth > c.clientWidth)''')
        assert scrolls
        # ... inside their box: the page itself is no wider than the phone
        assert visit.page.evaluate('document.documentElement.scrollWidth') <= 390
        assert visit.page.evaluate(COPY_BUTTON_ON_TEXT) == 0
        visit.page.screenshot(path=str(SCREENSHOTS / 'model-390.png'))
        visit.page.locator('#ConvMixerLayer .lit-code').scroll_into_view_if_needed()
        visit.page.screenshot(path=str(SCREENSHOTS / 'model-390-code.png'))
        assert_local(visit, server)
    finally:
        visit.close()


def test_identifiers_and_symbol_legend(browser, server):
    visit = Visit(browser, server + MODEL_PAGE, 1280)
    page = visit.page
    try:
        # Clicking an identifier highlights all its occurrences
        page.locator('.lit-code [data-sym="kernel_size"]').first.click()
        assert page.locator('.lit-hl').count() == page.locator('.lit-code [data-sym="kernel_size"]').count() > 3
        # Hovering the paper symbol h highlights d_model in the code, and the other way round
        page.locator('.lit-legend [data-paper-sym="h"]').first.hover()
        assert page.locator('.lit-code .lit-pair-on[data-sym="d_model"]').count() > 3
        page.locator('.lit-code [data-sym="d_model"]').first.hover()
        assert page.locator('.katex .lit-pair-on[data-paper-sym="h"]').count() > 3
        # ... and says what it is called in the paper
        assert page.locator('.lit-tip').inner_text() == 'h in the paper'
        page.locator('#ConvMixerLayer').scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'model-1280-highlight.png'))
        # A link in the code goes to the definition's anchor
        page.locator('.lit-code a.lit-ref[href="#clone_module_list"]').first.click()
        assert page.url.endswith('#clone_module_list')
        assert page.locator('#clone_module_list').is_visible()
        assert_local(visit, server)
    finally:
        visit.close()


def test_theme_toggle_and_search(browser, server):
    visit = Visit(browser, server + MODEL_PAGE, 1280)
    page = visit.page
    try:
        scheme = page.locator('body').get_attribute('data-md-color-scheme')
        page.locator('form[data-md-component="palette"] label:visible').first.click()
        assert page.locator('body').get_attribute('data-md-color-scheme') != scheme
        page.screenshot(path=str(SCREENSHOTS / 'model-1280-toggled.png'))
        # Code is searchable, not only prose
        page.locator('input.md-search__input').click()
        page.keyboard.type('point_wise_conv')
        page.wait_for_selector('.md-search-result__item', timeout=10000)
        assert page.locator('.md-search-result__item').count() > 0
        # The definition comes first, before pages that only mention the name:
        # the first result is the model page, and its first section is the
        # one whose code assigns `self.point_wise_conv`
        # Read the list in one step: the search may still be redrawing it
        page.wait_for_timeout(300)
        hrefs = page.eval_on_selector_all('.md-search-result__item a',
                                          'links => links.map(a => a.getAttribute("href"))')
        assert MODEL_PAGE in hrefs[0], hrefs[:3]
        section = next(h for h in hrefs if '#' in h).split('#')[1]
        assert 'self.point_wise_conv = ' in page.locator(f'[id="{section}"]').inner_text()
        assert_local(visit, server)
    finally:
        visit.close()


@pytest.mark.parametrize('path', ['index.html', 'tweetable.html', 'misreadings.html'])
def test_prose_pages(browser, server, path):
    visit = Visit(browser, server + path, 1280)
    try:
        assert visit.page.locator('.katex').count() > 0
        assert '$' not in visible_text_outside_math_and_code(visit)
        visit.page.screenshot(path=str(SCREENSHOTS / path.replace('.html', '-1280.png')), full_page=True)
        assert_local(visit, server)
    finally:
        visit.close()


def test_site_works_from_disk(browser, site_build):
    context = browser.new_context(viewport={'width': 1280, 'height': 900})
    page = context.new_page()
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    try:
        page.goto((site_build.site / MODEL_PAGE).as_uri(), wait_until='load')
        assert page.locator('.katex').count() > 10
        # The style sheets loaded: the sections are two columns
        assert page.locator('.lit-section').first.evaluate('(el) => getComputedStyle(el).display') == 'grid'
        # Search runs without a server too (the index is inlined, the worker shimmed)
        page.locator('input.md-search__input').click()
        page.keyboard.type('point_wise_conv')
        page.wait_for_selector('.md-search-result__item', timeout=10000)
        page.keyboard.press('Escape')
        # At 1280 px the navigation of a source page is a drawer behind the menu button
        page.locator('label.md-header__button[for="__drawer"]').click()
        page.locator('.md-nav__link:has-text("Home")').first.click()
        page.wait_for_load_state('load')
        assert page.url.endswith('index.html')
        assert not errors
    finally:
        context.close()


def test_chart_is_readable_in_dark_mode(browser, server):
    from io import BytesIO

    from PIL import Image, ImageStat

    visit = Visit(browser, server + 'performance.html', 1280)
    page = visit.page
    try:
        page.locator('form[data-md-component="palette"] label:visible').first.click()
        assert page.locator('body').get_attribute('data-md-color-scheme') == 'slate'
        charts = page.locator('img.lit-chart')
        assert charts.count() == 2
        for i in range(charts.count()):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            picture = Image.open(BytesIO(chart.screenshot())).convert('L')
            page.screenshot(path=str(SCREENSHOTS / f'performance-1280-dark-{i + 1}.png'))
            # A dark background, as the page's, with light marks on it: not a white box
            mean = ImageStat.Stat(picture).mean[0]
            darkest, lightest = picture.getextrema()
            assert mean < 110, f"chart {i + 1} is a light box in dark mode (mean grey {mean:.0f})"
            assert lightest - darkest > 120
    finally:
        visit.close()


def test_every_page_loads_cleanly(browser, server, site_build):
    """
    No console errors and nothing from another host, on every page of the site;
    and at 390 px, no page wider than the phone.
    """
    pages = sorted(p.relative_to(site_build.site).as_posix() for p in site_build.site.rglob('*.html')
                   if p.name != '404.html')
    assert len(pages) > 10
    context = browser.new_context(viewport={'width': 1280, 'height': 900})
    page = context.new_page()
    requests, errors = [], []
    page.on('request', lambda r: requests.append(r.url))
    page.on('console', lambda m: m.type == 'error' and errors.append(m.text))
    page.on('pageerror', lambda e: errors.append(str(e)))
    try:
        for path in pages:
            page.goto(server + path, wait_until='networkidle')
            assert page.locator('article h1').count() >= 1, path
            assert not errors, f"{path}: {errors}"
            page.set_viewport_size({'width': 390, 'height': 844})
            width = page.evaluate('document.documentElement.scrollWidth')
            assert width <= 390, f"{path} is {width} px wide on a 390 px phone"
            if path == 'index.html':
                page.screenshot(path=str(SCREENSHOTS / 'index-390.png'))
                # The architecture figure keeps readable text, in a box that scrolls
                size = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                                     "'.lit-figure svg text')).fontSize) * document.querySelector("
                                     "'.lit-figure svg').getBoundingClientRect().width / 760")
                assert size >= 11, f"figure text is {size:.1f} px"
            page.set_viewport_size({'width': 1280, 'height': 900})
        outside = [u for u in requests if not u.startswith(server) and not u.startswith('data:')]
        assert not outside, outside
    finally:
        context.close()
