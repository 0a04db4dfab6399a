"""
The site's addresses: where it is published, and a not-found page that works
wherever it is opened.

`mkdocs.yml` sets the repository's address once, `repo_url`; the published
address (`site_url`, for the sitemap and the canonical links) follows from it
as its GitHub Pages address unless `mkdocs.yml` sets one (`published_address`).

mkdocs writes the paths of `404.html` from the server's root, so that the page
works at any depth of the published site; from disk, or served at another
path, it loses its style sheets. `relative_not_found_page` makes them relative.
"""

import json
import re
from typing import Optional
from urllib.parse import urlsplit

GITHUB_REPO_RE = re.compile(r'https://github\.com/([\w.-]+)/([\w.-]+)$')


def published_address(repo_url: str) -> Optional[str]:
    """
    Where the site is published, for the sitemap and the canonical links when
    `mkdocs.yml` sets no `site_url`: the GitHub Pages address of `repo_url`,
    so that the repository is the one address a publisher sets.
    """
    found = GITHUB_REPO_RE.match(repo_url or '')
    return f'https://{found.group(1).lower()}.github.io/{found.group(2)}/' if found else None


# The not-found page's paths become relative (right for `404.html` itself, at the
# site's root), and a script that runs first sets the page's base to the site's
# root when it is served from the published path (at any depth below it).
ROOT_PATH_RE = '(\\s(?:href|src)=")' + '{}'
BASE_SCRIPT = ('<script>(function(){{var root={root};'
               'if(location.protocol!=="file:"&&location.pathname.indexOf(root)===0)'
               'document.write(\'<base href="\'+root+\'">\');}})()</script>')


def relative_not_found_page(html: str, site_url: Optional[str]) -> str:
    root = urlsplit(site_url or '/').path or '/'
    if not root.endswith('/'):
        root += '/'
    html = re.sub(ROOT_PATH_RE.format(re.escape(root)), r'\1', html)
    html = html.replace(f'"base": "{root}"', '"base": "."').replace(f'"base": "{root[:-1]}"', '"base": "."')
    return html.replace('<head>', '<head>' + BASE_SCRIPT.format(root=json.dumps(root)), 1)
