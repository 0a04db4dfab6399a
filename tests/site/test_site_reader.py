"""
The reader's tools in a real browser: the traced shapes beside the code (in
both colour schemes, and the switch to ImageNet's model), prose and code that
light each other up, the paper's symbols and their code names, and the
notebook link. Screenshots go to `artifacts/screenshots/reader-*.png`.
"""

import contextlib
import json

import pytest

import test_site_browser as shared
from test_site_browser import MODEL_PAGE, SCREENSHOTS, Visit, assert_local

# The browser and the local server of the other browser tests
browser = shared.browser
server = shared.server

# Code line (without its shape) → the shape beside it, for every `.lit-line` that has one
SHAPES_BY_LINE = '''() => Object.fromEntries([...document.querySelectorAll('.lit-code .lit-line')]
    .filter((line) => line.querySelector('.lit-shape'))
    .map((line) => {
        const shape = line.querySelector('.lit-shape');
        const code = [...line.childNodes].filter((n) => n !== shape).map((n) => n.textContent).join('');
        return [code.trim(), shape.textContent];
    }))'''

# WCAG contrast of an element's text on the code block's background (composited on the page's)
CONTRAST = '''(el) => {
    const rgba = (text) => text.match(/[\\d.]+/g).map(Number).concat([1]).slice(0, 4);
    const page = rgba(getComputedStyle(document.body).backgroundColor);
    const box = rgba(getComputedStyle(el.closest('pre').querySelector('code')).backgroundColor);
    const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3]));
    const background = over(box, page);
    const text = over(rgba(getComputedStyle(el).color), background);
    const luminance = (rgb) => {
        const [r, g, b] = rgb.map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [a, b] = [luminance(text), luminance(background)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
}'''

PATCH_EMBEDDING = 'x = self.norm(self.act(self.conv(x)))'
HEAD = 'x = self.linear(x)'


@pytest.fixture(autouse=True, scope='module')
def screenshots_folder():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def opened(browser, server, path: str = MODEL_PAGE, width: int = 1280, height: int = 900):
    """A page of the site in a new browser window; nothing it loads may come from elsewhere."""
    visit = Visit(browser, server + path, width, height)
    try:
        yield visit.page
        assert_local(visit, server)
    finally:
        visit.close()


def set_scheme(page, scheme: str):
    if page.locator('body').get_attribute('data-md-color-scheme') != scheme:
        page.locator('form[data-md-component="palette"] label:visible').first.click()
    assert page.locator('body').get_attribute('data-md-color-scheme') == scheme


@pytest.mark.parametrize('scheme', ['default', 'slate'])
def test_traced_shapes_beside_the_code(browser, server, scheme):
    with opened(browser, server) as page:
        set_scheme(page, scheme)
        shapes = page.evaluate(SHAPES_BY_LINE)
        assert shapes[PATCH_EMBEDDING] == '[8, 256, 16, 16]'
        assert shapes[HEAD] == '[8, 10]'
        assert shapes['x = self.pool(x).flatten(1)'] == '[8, 256]'
        # a shape for each tensor line of the paper's `forward` methods
        assert len(shapes) >= 9
        # Beside its line: on the same row, after the code
        line = page.locator('.lit-line', has_text=PATCH_EMBEDDING).first
        shape = line.locator('.lit-shape')
        line.scroll_into_view_if_needed()
        assert shape.is_visible()
        line_box, shape_box = line.bounding_box(), shape.bounding_box()
        assert line_box['y'] <= shape_box['y'] < line_box['y'] + line_box['height']
        code_end = line.locator('[data-sym]').last.bounding_box()
        assert shape_box['x'] >= code_end['x'] + code_end['width']
        # Readable: at least 4.5 : 1 on the code background, in this scheme
        assert shape.evaluate(CONTRAST) >= 4.5
        # Text of the page (search, screen readers), but not copied with the code
        assert '[8, 256, 16, 16]' in page.locator('article').inner_text()
        assert shape.evaluate('(el) => getComputedStyle(el).userSelect') == 'none'
        name = 'reader-shapes-1280.png' if scheme == 'default' else 'reader-shapes-1280-dark.png'
        page.screenshot(path=str(SCREENSHOTS / name))


def test_switch_to_the_imagenet_model(browser, server):
    with opened(browser, server) as page:
        page.locator('.lit-trace-choice[data-trace="imagenet"]').click()
        shapes = page.evaluate(SHAPES_BY_LINE)
        assert shapes[PATCH_EMBEDDING] == '[8, 1536, 32, 32]'
        assert shapes[HEAD] == '[8, 1000]'
        assert page.locator('.lit-trace-choice[data-trace="imagenet"]').get_attribute('aria-pressed') == 'true'
        assert page.locator('.lit-trace-choice[data-trace="cifar10"]').get_attribute('aria-pressed') == 'false'
        page.locator('.lit-line', has_text=PATCH_EMBEDDING).first.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'reader-shapes-imagenet-1280.png'))
        # The choice stays for the next page load
        page.reload(wait_until='networkidle')
        assert page.evaluate(SHAPES_BY_LINE)[HEAD] == '[8, 1000]'
        # Clicking a shape shows the other model's
        page.locator('.lit-line', has_text=HEAD).first.locator('.lit-shape').click()
        assert page.evaluate(SHAPES_BY_LINE)[HEAD] == '[8, 10]'


def test_prose_and_code_point_at_each_other(browser, server):
    with opened(browser, server) as page:
        section = page.locator('#ConvMixerLayer')
        lines = section.locator('.lit-line')
        assert page.locator('.lit-linked').count() == 0
        # Hovering the prose lights up each line of its code, and nothing else
        section.locator('.lit-docs').hover()
        assert section.locator('.lit-line.lit-linked').count() == lines.count() > 0
        assert page.locator('.lit-linked').count() == lines.count()
        lit = lines.first.evaluate('(el) => getComputedStyle(el).backgroundColor')
        other = page.locator('#PatchEmbeddings .lit-line').first.evaluate(
            '(el) => getComputedStyle(el).backgroundColor')
        assert lit != other
        section.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / 'reader-hover-1280.png'))
        # ... and the light goes when the mouse leaves
        page.locator('header').hover()
        assert page.locator('.lit-linked').count() == 0
        # Hovering the code lights up its prose
        lines.first.hover()
        assert section.locator('.lit-docs.lit-linked').count() == 1
        page.locator('header').hover()
        assert page.locator('.lit-linked').count() == 0
        # The keyboard: prose beside code takes the focus, and lights up its code
        docs = section.locator('.lit-docs')
        assert docs.get_attribute('tabindex') == '0'
        docs.focus()
        assert section.locator('.lit-line.lit-linked').count() == lines.count()
        # A link in the prose keeps it; focus elsewhere puts the light out
        page.keyboard.press('Tab')
        assert section.locator('.lit-docs a:focus').count() == 1
        assert section.locator('.lit-line.lit-linked').count() == lines.count()
        page.locator('.lit-source a.lit-download').focus()
        assert page.locator('.lit-linked').count() == 0


def test_symbols_show_their_code_names(browser, server):
    with opened(browser, server) as page:
        tip = page.locator('.lit-tip')
        # σ in the prose is `activation` in the code, and the other way round
        sigma = page.locator('.lit-docs .katex [data-paper-sym="σ"]').first
        sigma.scroll_into_view_if_needed()
        sigma.hover()
        assert tip.is_visible() and tip.inner_text() == 'activation in the code'
        assert page.locator('.lit-code .lit-pair-on[data-sym="activation"]').count() > 3
        page.screenshot(path=str(SCREENSHOTS / 'reader-symbol-1280.png'))
        page.locator('header').hover()
        assert not tip.is_visible()
        page.locator('.lit-code [data-sym="d_model"]').first.hover()
        assert tip.inner_text() == 'h in the paper'
        assert page.locator('.lit-legend .lit-legend-pair[data-pair="σ"]').count() == 1
    # Where σ is a standard deviation, it is not paired with `activation`
    with opened(browser, server, 'experiments/datasets/gpu_augment.html') as page:
        assert page.locator('.katex-html', has_text='σ').count() > 0
        assert page.locator('[data-pair="σ"]').count() == 0


def test_phone_layout_shapes_and_no_hover_aids(browser, server):
    # A touch screen: no hover, so prose and code stay as they are
    context = browser.new_context(viewport={'width': 390, 'height': 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(server + MODEL_PAGE, wait_until='networkidle')
        assert page.evaluate("matchMedia('(hover: none)').matches")
        assert page.evaluate(SHAPES_BY_LINE)[HEAD] == '[8, 10]'
        docs = page.locator('#ConvMixerLayer .lit-docs')
        assert docs.get_attribute('tabindex') is None
        docs.tap()
        assert page.locator('.lit-linked').count() == 0
        assert page.evaluate('document.documentElement.scrollWidth') <= 390
        # The code box scrolls sideways to its line's shape
        shape = page.locator('.lit-line', has_text=PATCH_EMBEDDING).first.locator('.lit-shape')
        shape.scroll_into_view_if_needed()
        box = shape.bounding_box()
        assert 0 <= box['x'] and box['x'] + box['width'] <= 390
        page.screenshot(path=str(SCREENSHOTS / 'reader-shapes-390.png'))
    finally:
        context.close()
    # A narrow window with a mouse still links prose and code (stacked)
    with opened(browser, server, width=390, height=844) as page:
        section = page.locator('#ConvMixerLayer')
        section.locator('.lit-docs').hover()
        assert section.locator('.lit-line.lit-linked').count() > 0
        page.screenshot(path=str(SCREENSHOTS / 'reader-hover-390.png'))


@pytest.mark.parametrize('width', [1280, 390])
def test_notebook_link(browser, server, width):
    with opened(browser, server, width=width, height=844) as page:
        link = page.locator('.lit-source a.lit-notebook')
        assert link.is_visible() and link.inner_text() == 'download notebook'
        assert link.get_attribute('href') == 'model.ipynb'
        assert link.get_attribute('download') is not None
        response = page.request.get(server + 'labml_convmixer/model.ipynb')
        assert response.ok
        notebook = json.loads(response.text())
        assert notebook['nbformat'] == 4 and notebook['cells'][0]['cell_type'] == 'markdown'
        link.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f'reader-notebook-{width}.png'))
