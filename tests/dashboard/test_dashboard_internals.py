"""
What `experiments/dashboard/internals.py` assumes of labml-app, labml-db and
labml, checked against the installed packages: an upgrade that moves any of it
fails here.
"""

import base64
import hashlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import labml_app
import pytest

from conftest import ROOT
from experiments.dashboard import internals

APP_STATIC = Path(labml_app.__file__).parent / 'static'


def test_app_is_built_on_import_through_init_mongo_db():
    # `load_app` puts the file store in `db.init_mongo_db`'s place before
    # importing `flask_app` (not imported here: it would look for MongoDB)
    source = (Path(labml_app.__file__).parent / 'flask_app.py').read_text()
    assert re.search(r'^app = create_app\(\)$', source, re.M)
    create_app = source[source.index('def create_app'):source.index('app = create_app()')]
    assert 'db.init_mongo_db()' in create_app
    assert 'from labml_app import db' in source


def test_file_store_replaces_mongodb(tmp_path):
    # In its own process: labml-app's import sets labml-db's drivers for good
    code = (f"from pathlib import Path\n"
            f"from experiments.dashboard import internals\n"
            f"internals.load_app(Path({str(tmp_path)!r}), '127.0.0.1', 5005)\n")
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # labml-app's two projects, as models and in their index
    projects = sorted(p.name.split(':')[0] for p in (tmp_path / 'models' / 'Project').iterdir())
    assert projects == ['Project', 'Project']
    index = (tmp_path / 'indexes' / 'ProjectIndex.yaml').read_text()
    assert 'floating_project:' in index and 'samples:' in index
    assert not list(tmp_path.rglob('*.tmp'))


def test_page_loads_exactly_the_cdn_files_we_serve():
    html = (APP_STATIC / 'index.html').read_text()
    remote = re.findall(r'(?:href|src)="(https?://[^"]+)"', html)
    assert sorted(remote) == sorted(a.url for a in internals.ASSETS)
    offline = internals.offline_html(html)
    assert not re.findall(r'(?:href|src)="https?://', offline)
    for asset in internals.ASSETS:
        assert f'"{internals.asset_path(asset)}"' in offline


def test_npm_copies_are_the_cdn_files():
    packages = internals.check_assets()
    # The page pins Bootstrap's bytes by their hash; the npm copy has the same
    html = (APP_STATIC / 'index.html').read_text()
    integrity = re.search(r'integrity="sha384-([^"]+)"', html).group(1)
    css = (packages['bootstrap'] / 'dist/css/bootstrap.min.css').read_bytes()
    assert base64.b64encode(hashlib.sha384(css).digest()).decode() == integrity
    # d3's `d3.v6.min.js` is the newest 6.x; Font Awesome's fonts sit where its CSS looks
    assert (packages['d3'] / 'dist/d3.min.js').read_text().startswith('// https://d3js.org v6.7.0')
    fonts = packages['@fortawesome/fontawesome-free'] / 'webfonts'
    for name in re.findall(r'url\("\.\./webfonts/([^"?#]+)', (fonts.parent / 'css/all.css').read_text()):
        assert (fonts / name).exists(), name


def test_missing_npm_copies_are_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(internals, 'NODE_MODULES', tmp_path)
    with pytest.raises(internals.AssetsMissing, match=r'npm ci --prefix experiments/dashboard'):
        internals.check_assets()


def test_token_travels_in_the_path():
    from labml.internal.lab import get_app_url_for_handle
    # labml posts to `<app_url>/track` and refuses an `app_url` with a query
    assert get_app_url_for_handle('track', base_url='http://h:1/api/v1/tok') == \
        'http://h:1/api/v1/tok/track?'
    with pytest.raises(RuntimeError):
        get_app_url_for_handle('track', base_url='http://h:1/api/v1/track?labml_token=tok')
    # labml-app reads the token from the query only, on a route with it in the path
    # (its source is read, not imported: its settings need the server's address)
    handlers = (APP_STATIC.parent / 'handlers.py').read_text()
    update_run = handlers[handlers.index('async def update_run'):]
    update_run = update_run[:update_run.index('\nasync def ')]
    assert "labml_token = request.query_params.get('labml_token', '')" in update_run
    assert "_add_server(app, 'POST', update_run, '{labml_token}/track')" in handlers
    # the page's own request for its runs answers with its project's token
    assert "return {'runs': res, 'labml_token': labml_token}" in handlers


def test_token_in_query():
    assert internals.token_in_query('/api/v1/abc/track', b'run_uuid=1') == \
        b'run_uuid=1&labml_token=abc'
    assert internals.token_in_query('/api/v1/abc/track', b'labml_token=x') == b'labml_token=x'
    assert internals.token_in_query('/api/v1/runs/abc', b'') == b''


def test_labml_tracker_thread_can_be_a_daemon():
    import labml.internal.app as app
    import labml.internal.experiment as experiment
    assert 'daemon' in inspect.signature(app.AppTracker.__init__).parameters
    assert 'daemon=self.daemon' in inspect.getsource(app.AppTracker._check)
    # A run takes `AppTracker` from `labml.internal.app` when it starts, so the
    # subclass put there is the one it uses
    assert 'from labml.internal.app import AppTracker' in \
        inspect.getsource(experiment.Experiment._start_tracker)
