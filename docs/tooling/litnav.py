"""
The navigation of the annotated pages: `mkdocs.yml`'s `nav` names them.

The reading order is the author's to choose, so the hook does not make one up:
every source page appears in the `nav` of `mkdocs.yml`, in any section, as

* its file, `- labml_convmixer/model.py` (the page's `title` is its name in
  the navigation), or `- Another name: labml_convmixer/model.py`;
* its folder, `- experiments/runner/`: the folder's pages that the `nav`
  does not name one by one, in the folder's order (`__init__.py` first, then
  `nav_order`, then file name). `- The run: experiments/runner/` puts them in
  a section of that name. A folder stands for the files directly in it, not
  for its sub-folders, which get entries of their own.

A new file in a listed folder takes its place with no edit; a new folder needs
one line. The build fails with one line when a source page is in no section
of the `nav`, or in two.

`reading_list` writes the same order as a Markdown list for the home page,
with each page's one-line summary.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from mkdocs.exceptions import PluginError
from mkdocs.utils.meta import get_data


@dataclass
class NavPage:
    """What the navigation needs of a source page."""
    src_uri: str  # `experiments/cifar10.md`
    title: str

    @property
    def file(self) -> str:
        return self.src_uri[:-3] + '.py'

    @property
    def folder(self) -> str:
        return self.src_uri.rsplit('/', 1)[0] + '/' if '/' in self.src_uri else ''


def _is_file(entry) -> bool:
    return isinstance(entry, str) and entry.endswith('.py')


def _is_folder(entry) -> bool:
    return isinstance(entry, str) and entry.endswith('/')


def expand_nav(nav: list, pages: List[NavPage]) -> list:
    """
    `nav` with every source file and folder replaced by its pages, given in
    their folder's order. Raises `PluginError` when a page is in no section or
    in two, or the `nav` names a file or folder that has no pages.
    """
    by_file = {page.file: page for page in pages}
    named: Dict[str, str] = {}  # file → where the nav names it

    def collect(items, where):
        for item in items or []:
            title, value = _split(item)
            here = f'{where} › {title}' if title else where
            if _is_file(value):
                if value not in by_file:
                    raise PluginError(f"mkdocs.yml nav: {value} is not a Python file of the project")
                if value in named:
                    raise PluginError(f"mkdocs.yml nav: {value} is in two sections ({named[value]} and {where});"
                                      f" keep one")
                named[value] = where
            elif isinstance(value, list):
                collect(value, here)

    collect(nav, 'the top level')
    folders: Dict[str, str] = {}  # folder → where the nav names it

    def expand(items, where) -> list:
        out = []
        for item in items or []:
            title, value = _split(item)
            if _is_file(value):
                page = by_file[value]
                out.append({title or page.title: page.src_uri})
            elif _is_folder(value):
                if value in folders:
                    raise PluginError(f"mkdocs.yml nav: the folder {value} is in two sections "
                                      f"({folders[value]} and {where}); keep one")
                folders[value] = where
                rest = [{p.title: p.src_uri} for p in pages if p.folder == value and p.file not in named]
                if not any(p.folder == value for p in pages):
                    raise PluginError(f"mkdocs.yml nav: the folder {value} has no Python files")
                if title:
                    out.append({title: rest})
                else:
                    out += rest
            elif isinstance(value, list):
                out.append({title: expand(value, f'{where} › {title}' if where else title)})
            else:
                out.append(item)
        return out

    expanded = expand(nav, 'the top level')
    missing = [p.file for p in pages if p.file not in named and p.folder not in folders]
    if missing:
        raise PluginError(f"mkdocs.yml nav: {', '.join(missing)} in no section; name the file, or its "
                          f"folder (`- {missing[0].rsplit('/', 1)[0]}/`), where it belongs")
    return expanded


def _split(item) -> Tuple[Optional[str], object]:
    """(title, value) of a nav entry: `- value` or `- title: value`."""
    if isinstance(item, dict) and len(item) == 1:
        return next(iter(item.items()))
    return None, item


def reading_list(nav: list, docs_dir: Path, summary: Callable[[str], Optional[str]]) -> str:
    """
    The expanded `nav`, but the home page, as Markdown: a paragraph per
    top-level section, a line per page with its summary (`summary(src_uri)` for
    a source page, the `description` of a Markdown page's front matter), and a
    line per sub-section that lists its pages by name only.
    """
    out = []
    for item in nav:
        title, value = _split(item)
        if isinstance(value, str):
            if value != 'index.md':
                out += ['', _line(title, value, docs_dir, summary)]
            continue
        out += ['', f'**{title}**', '']
        for sub in value:
            sub_title, sub_value = _split(sub)
            if isinstance(sub_value, list):
                links = ' · '.join(f'[{_title(t, v, docs_dir)}]({v})' for t, v in map(_split, sub_value))
                out.append(f'* {sub_title}: {links}.')
            else:
                out.append(_line(sub_title, sub_value, docs_dir, summary))
    return '\n'.join(out).strip() + '\n'


def _line(title: Optional[str], uri: str, docs_dir: Path, summary: Callable[[str], Optional[str]]) -> str:
    text = summary(uri)
    if text is None:
        text = ' '.join(str(_front_matter(docs_dir, uri).get('description', '')).split())
    return f'* [{_title(title, uri, docs_dir)}]({uri})' + (f': {text}' if text else '')


def _title(title: Optional[str], uri: str, docs_dir: Path) -> str:
    return title or str(_front_matter(docs_dir, uri).get('title') or uri)


def _front_matter(docs_dir: Path, uri: str) -> dict:
    path = docs_dir / uri
    return get_data(path.read_text(encoding='utf-8'))[1] if path.is_file() else {}
