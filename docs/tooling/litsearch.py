"""
Search entries for the annotated pages: one per section, so that a search
for a name lands on the section that defines or uses it, not on the top of a
long page.

The theme's search plugin cuts a page into entries at its headings; the
sections of an annotated page have none (their anchors are on `div`s), so a
page was one long entry, and short prose pages that mention a name in passing
ranked above the code that defines it. `section_entries` reads the finished
page HTML and gives one entry per section: its prose and its code, titled by
the definition the section belongs to (`ConvMixerLayer.__init__`), and
tagged with the names that its code defines (`point_wise_conv` where
`self.point_wise_conv = ...` is); the page's own entry is tagged with the
names that its title and summary name (`explained_names`), the names it
explains. The search weighs tags most, then titles, so a search for a name
ranks its definition and its explanation first, then the code and prose that
use it. The text keeps words apart where the page does (`gives
<em>exactly</em> the`, `file.</p><p>We`), as the snippets show it. `literate.on_post_build` puts the entries into the index in
place of the plugin's entries for the page.
"""

import re
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from typing import Dict, List, Optional

# Tags whose markup the search results keep (the same as the theme's indexer)
KEEP = {'p', 'code', 'pre', 'li', 'ol', 'ul', 'sub', 'sup'}
HEADINGS = {'h1', 'h2', 'h3', 'h4', 'h5', 'h6'}
# Blocks whose end parts the words around it
BLOCK = {'p', 'li', 'div', 'td', 'th', 'tr', 'pre', 'blockquote', 'figcaption', 'dd', 'dt'}
VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source',
        'track', 'wbr'}


@dataclass
class Block:
    """A top-level block of the page: the introduction or a section (`id`), or what lies between."""
    id: Optional[str]
    intro: bool = False
    heading: str = ''  # the text of its first heading
    text: List[str] = field(default_factory=list)


class _Blocks(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: List[Block] = [Block(None)]
        self.stack: List[str] = []  # open tags
        self.block_depth: Optional[int] = None  # depth of the open section `div`
        self.skip_depth: Optional[int] = None  # depth of an excluded element
        self.heading_depth: Optional[int] = None

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        attrs = dict(attrs)
        self.stack.append(tag)
        depth = len(self.stack)
        classes = (attrs.get('class') or '').split()
        if self.block_depth is None and tag == 'div' and ('lit-section' in classes or 'lit-intro' in classes):
            self.block_depth = depth
            self.blocks.append(Block(attrs.get('id'), 'lit-intro' in classes))
            return
        if self.skip_depth is not None:
            return
        if 'data-search-exclude' in attrs or 'lit-permalink' in classes or 'headerlink' in classes:
            self.skip_depth = depth
            return
        if tag in HEADINGS and self.heading_depth is None:
            self.heading_depth = depth
        if tag in KEEP:
            self.blocks[-1].text.append(f'<{tag}>')

    def handle_endtag(self, tag):
        if tag in VOID or not self.stack:
            return
        # Close up to the matching tag (the HTML is well formed; this is only a guard)
        while self.stack:
            depth = len(self.stack)
            open_tag = self.stack.pop()
            if self.skip_depth == depth:
                self.skip_depth = None
            elif self.skip_depth is None and open_tag in KEEP:
                self.blocks[-1].text.append(f'</{open_tag}>')
            if self.heading_depth == depth:
                self.heading_depth = None
                self.blocks[-1].text.append(' ')
            elif open_tag in BLOCK and self.skip_depth is None and not _ends_with_space(self.blocks[-1].text):
                # The end of a paragraph or list item parts words too ("file. We", not "file.We")
                self.blocks[-1].text.append(' ')
            if self.block_depth == depth:
                self.block_depth = None
                self.blocks.append(Block(None))
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.skip_depth is not None:
            return
        block = self.blocks[-1]
        if 'pre' not in self.stack:
            # Collapse runs of white space as the browser does, keeping a space at
            # either end: it parts this text from its neighbours (`gives <em>exactly</em>
            # the`, not "givesexactlythe")
            data = re.sub(r'\s+', ' ', data)
            if data.startswith(' ') and _ends_with_space(block.text):
                data = data[1:]
            if not data:
                return
        if self.heading_depth is not None and not block.heading.endswith('\n'):
            block.heading += data
        block.text.append(escape(data, quote=False))


def _ends_with_space(pieces: List[str]) -> bool:
    """Whether the entry's text so far ends with white space (or is empty), markup aside."""
    for piece in reversed(pieces):
        if not (piece.startswith('<') and piece.endswith('>')):
            return piece[-1:].isspace()
    return True


# A name as code writes it: CamelCase with a capital inside (`RandAugment`) or snake_case
NAME_RE = re.compile(r'\b(?:[A-Z][a-z0-9]+[A-Z]\w*|[a-z][a-z0-9]*_\w+)\b')


def explained_names(title: str, summary: str) -> List[str]:
    """
    The names that a page is about: those its title or one-line summary names.
    They tag the page's own entry, so that a search for `RandAugment` ranks the
    page that explains it above a constant that merely starts with the word
    (`RANDAUGMENT_CHECKS`, tagged where it is defined).
    """
    return list(dict.fromkeys(NAME_RE.findall(f'{title} {summary}')))


def section_entries(page_html: str, url: str, page_title: str, titles: Dict[str, str],
                    names: Dict[str, List[str]], page_names: Optional[List[str]] = None) -> List[dict]:
    """
    Search entries for the page at `url`: first the page itself (its
    introduction and what is not in a section), then one per section, titled
    by `titles[section id]`, else by the section's first heading, else by the
    page title, and tagged with `names[section id]`.
    """
    parser = _Blocks()
    parser.feed(page_html)
    parser.close()
    page_text, entries = [], []
    for block in parser.blocks:
        text = ''.join(block.text).strip()
        if block.id is None or block.intro:
            page_text.append(text)
            continue
        if not text:
            continue
        title = titles.get(block.id) or ' '.join(block.heading.split()) or page_title
        entry = {'location': f'{url}#{block.id}', 'title': title, 'text': text}
        if names.get(block.id):
            entry['tags'] = names[block.id]
        entries.append(entry)
    page = {'location': url, 'title': page_title, 'text': ' '.join(t for t in page_text if t)}
    if page_names:
        page['tags'] = page_names
    return [page] + entries
