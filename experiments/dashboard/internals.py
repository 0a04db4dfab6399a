"""
---
title: What we change in labml's dashboard, and why
summary: >
  The five places where the dashboard works around labml-app and labml's
  client (three here, two in the runner's client), each with its reason and
  a test that fails when an upgrade moves it.
nav_order: 1
---

# What we change in labml's dashboard, and why

The [dashboard](__init__.html) runs `labml-app` 0.5.14 as it is published.
Five things in it and in labml's client do not fit a dashboard on your own
machine, without a database and without a network; each is changed from
outside the packages, here or, for the two in labml's client that a run
needs, in the runner's [client](../runner/dashboard_client.html), and nowhere
else:

1. **The store.** `labml_app.flask_app` builds its app when it is imported, and
   building it calls `labml_app.db.init_mongo_db()`, which connects to MongoDB
   and stops when none answers. Before that import we put
   [`use_file_store`](#use_file_store) in its place: the same models and
   indexes, on labml-db's own file drivers.
2. **The runs' project.** labml-app lists only the runs that come with its
   project's token, and labml's client has no way to send one where labml-app
   reads it. The client puts it in the address's path
   ([`project_token`](../runner/dashboard_client.html#project_token), in the
   runner's client), where labml-app's route has a place for it, and the
   dashboard moves it to the query ([`token_in_query`](#token_in_query)).
3. **The page's libraries.** labml-app's `index.html` loads Bootstrap, d3 and
   Font Awesome from three CDNs. [`LocalApp`](#LocalApp) rewrites those three
   addresses in every HTML answer to copies that npm installed (`package.json`
   beside this file pins the versions the page names); [`ASSETS`](#ASSETS) says
   which file serves which address.
4. **Files outside the app.** labml-app answers an unknown address with the
   file of that name under its `static/` folder, `..` included;
   [`LocalApp`](#LocalApp) refuses such addresses.
5. **A run that must not wait for the dashboard.** labml's client sends a
   run's data from a background thread that retries for ever, and the thread
   keeps the process alive at its end: with the dashboard gone, a finished run
   would never exit. [`bound_exit`](../runner/dashboard_client.html#bound_exit),
   in the runner's client, makes it a thread the run waits for
   [`EXIT_WAIT_S`](../runner/dashboard_client.html#EXIT_WAIT_S) seconds at most.

`tests/dashboard/test_dashboard_internals.py` checks what each of these
assumes of the installed packages (the function the app is built with, the
addresses in the page, where the token is read, the thread's class), and the
dashboard's browser test runs them all, so an upgrade that moves any of them
fails a test, not a user's run.
"""

import json
import logging
import os
import re
import tempfile
import urllib.parse
import warnings
from pathlib import Path
from typing import Dict, List, NamedTuple

# The npm packages, installed by `npm ci --prefix experiments/dashboard`
NODE_MODULES = Path(__file__).resolve().parent / 'node_modules'


# ## The store
#
# labml-db, the small object store labml-app is written on, has drivers for
# MongoDB, Redis and plain files. We use the file drivers: one file per model
# (a run, its status, each of its analyses), one file per index (run uuid to
# model key, and so on), under the folder the dashboard is given.
#
# The models are kept in Python's pickle format, the format labml-app itself
# puts into MongoDB (its `MongoPickleDbDriver`): they hold numpy arrays (the
# metric series) and Python sets, which JSON cannot hold and YAML holds only
# as Python-specific tags. A pickle runs code when it is read, so the store is
# for the dashboard that wrote it, as MongoDB's data would be. The indexes are
# maps of strings to strings, kept in YAML, readable by eye.

def _write_atomic(path: Path, data, is_bytes: bool):
    """Write `path` whole or not at all: a temporary file, renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb' if is_bytes else 'w') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def use_file_store(root: Path):
    """
    labml-app's models and indexes, stored in files under `root`; run in place
    of `labml_app.db.init_mongo_db`, with the projects that function creates.
    """
    from labml_db import Index, Model
    from labml_db.driver.file import FileDbDriver
    from labml_db.index_driver.file import FileIndexDbDriver
    from labml_db.serializer.pickle import PickleSerializer
    from labml_db.serializer.yaml import YamlSerializer
    from labml_app import db, settings
    from labml_app.db import project

    # labml-db's file drivers write a file in place, so a crash during a write
    # would leave half a file; these two write a new file and rename it.
    class AtomicFileDbDriver(FileDbDriver):
        def save_dict(self, key, data):
            path = self._db_path / f'{key}.{self._serializer.file_extension}'
            _write_atomic(path, self._serializer.to_string(data), self._serializer.is_bytes)

    class AtomicFileIndexDbDriver(FileIndexDbDriver):
        def _save_cache(self):
            _write_atomic(self._index_path, self._serializer.to_string(self._cache), False)

    # `root/models/Run/Run:<key>.pkl`, `root/indexes/RunIndex.yaml`, ...
    Model.set_db_drivers([AtomicFileDbDriver(PickleSerializer(), m, root / 'models' / m.__name__)
                          for m in db.models])
    Index.set_db_drivers([AtomicFileIndexDbDriver(YamlSerializer(), i,
                                                  root / 'indexes' / f'{i.__name__}.yaml')
                          for i in db.indexes])
    # What `init_mongo_db` does after connecting: the two projects that runs
    # without a token are filed under (kept when they exist already)
    project.create_project(settings.FLOAT_PROJECT_TOKEN, 'float project')
    project.create_project(settings.SAMPLES_PROJECT_TOKEN, 'samples project')


class AppMissing(RuntimeError):
    pass


def load_app(store: Path, host: str, port: int):
    """
    labml-app's FastAPI app with its store in `store`. labml-app reads its
    address from two environment variables when it is imported, and its
    logger prints a line for every request unless told otherwise.
    """
    os.environ['LABML_APP_SERVER_IP'] = host
    os.environ['LABML_APP_SERVER_PORT'] = str(port)
    try:
        from labml_app import db
        from labml_app.logger import logger
    except ImportError:
        raise AppMissing("the dashboard needs labml-app: "
                         "run `pip install -e \".[dashboard]\"`") from None
    logger.setLevel(logging.WARNING)
    # labml-app summarises series that have no points yet; numpy warns of
    # the mean of nothing on every such request
    warnings.filterwarnings('ignore', category=RuntimeWarning, module='numpy')
    db.init_mongo_db = lambda *args, **kwargs: use_file_store(store)
    from labml_app.flask_app import app
    return app


# ## The runs' project
#
# labml-app files a run under the project whose token comes in the query of
# the address it is posted to, `.../track?labml_token=...`, and reads it from
# nowhere else; the runner's client puts the token in the path
# ([`project_token`](../runner/dashboard_client.html#project_token)), where
# labml-app's route has a place for it. The dashboard copies it into the query
# ([`LocalApp`](#LocalApp)).

_TRACK = re.compile(r'/api/v1/([^/?]+)/track')


def token_in_query(path: str, query: bytes) -> bytes:
    """The query of a post to `path`, with the path's token added for a run's data."""
    match = _TRACK.fullmatch(path)
    if match is None or b'labml_token=' in query:
        return query
    token = urllib.parse.quote(match.group(1)).encode()
    return query + (b'&' if query else b'') + b'labml_token=' + token


# ## The page's libraries
#
# Each address the page loads, the npm package and version that publish the
# same file, and the file in the package. The Bootstrap line of the page also
# carries the file's hash (`integrity`), which the browser checks: the copy
# from npm has the same bytes as the CDN's.

class Asset(NamedTuple):
    url: str
    package: str
    version: str
    file: str


ASSETS: List[Asset] = [
    Asset('https://cdn.jsdelivr.net/npm/bootstrap@5.0.0-beta2/dist/css/bootstrap.min.css',
          'bootstrap', '5.0.0-beta2', 'dist/css/bootstrap.min.css'),
    Asset('https://d3js.org/d3.v6.min.js', 'd3', '6.7.0', 'dist/d3.min.js'),
    # Font Awesome's style sheet finds its fonts at `../webfonts/`, so the
    # whole package is served, not the one file.
    Asset('https://cdnjs.cloudflare.com/ajax/libs/font-awesome/5.9.0/css/all.css',
          '@fortawesome/fontawesome-free', '5.9.0', 'css/all.css'),
]

# Where the copies are served from, on the dashboard's own address
ASSETS_PREFIX = '/offline-assets'


class AssetsMissing(RuntimeError):
    pass


def asset_path(asset: Asset) -> str:
    """The local address of `asset`."""
    return f'{ASSETS_PREFIX}/{asset.package}/{asset.file}'


def check_assets() -> Dict[str, Path]:
    """The installed packages, `{name: folder}`, each at the version the page names."""
    packages = {}
    for asset in ASSETS:
        folder = NODE_MODULES / asset.package
        manifest = folder / 'package.json'
        version = json.loads(manifest.read_text())['version'] if manifest.exists() else None
        if version != asset.version or not (folder / asset.file).exists():
            raise AssetsMissing(f"the dashboard page's {asset.package} {asset.version} is not "
                                "installed: run `npm ci --prefix experiments/dashboard`")
        packages[asset.package] = folder
    return packages


def offline_html(html: str) -> str:
    """The page with every CDN address replaced by its local copy's."""
    for asset in ASSETS:
        html = html.replace(asset.url, asset_path(asset))
    return html


class LocalApp:
    """
    ASGI middleware around labml-app: HTML answers come back with the CDN
    addresses replaced (labml-app answers `/` and every address it does not
    know, such as `/run/<uuid>`, with its `index.html`); a run's data gets its
    token into the query ([above](#the-runs-project)).

    It also refuses addresses with a `..` segment: labml-app answers any other
    address with the file of that name under its `static/` folder, unchecked,
    so `/../../etc/passwd` would read a file from anywhere on the machine.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        if '..' in scope['path'].split('/'):
            await send({'type': 'http.response.start', 'status': 404,
                        'headers': [(b'content-type', b'text/plain')]})
            return await send({'type': 'http.response.body', 'body': b'Not found'})
        scope = {**scope, 'query_string': token_in_query(scope['path'], scope['query_string'])}
        start = {}
        body = []

        async def rewrite(message):
            if message['type'] == 'http.response.start':
                headers = dict(message.get('headers', []))
                if not headers.get(b'content-type', b'').startswith(b'text/html'):
                    return await send(message)
                start.update(message)
                return
            if not start:
                return await send(message)
            # An HTML answer: gather it, rewrite it, send it with its new length
            body.append(message.get('body', b''))
            if message.get('more_body'):
                return
            html = offline_html(b''.join(body).decode('utf-8')).encode('utf-8')
            headers = [(k, v) for k, v in start.get('headers', [])
                       if k not in (b'content-length', b'etag')]
            headers.append((b'content-length', str(len(html)).encode()))
            await send({**start, 'headers': headers})
            await send({'type': 'http.response.body', 'body': html})

        await self.app(scope, receive, rewrite)


def offline_app(store: Path, host: str, port: int):
    """labml-app on a file store, its page's libraries served beside it."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles
    packages = check_assets()
    app = load_app(store, host, port)
    routes = [Mount(f'{ASSETS_PREFIX}/{name}', app=StaticFiles(directory=folder))
              for name, folder in packages.items()]
    return Starlette(routes=routes + [Mount('/', app=LocalApp(app))])
