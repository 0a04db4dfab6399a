"""
Shared set-up of the site tests: the docs tooling on the import path, and one
build of the whole site per test session, in a temporary folder.
"""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ROOT / 'docs' / 'tooling'
sys.path.insert(0, str(TOOLING))

from literate import SOURCE_DIRS  # noqa: E402  (needs the path above)

# The project's repository: set in one place, `repo_url` of mkdocs.yml
REPO_URL = yaml.safe_load((ROOT / 'mkdocs.yml').read_text(encoding='utf-8'))['repo_url'].rstrip('/')


@dataclass
class SiteBuild:
    site: Path  # the built site
    strict_ok: bool  # whether `mkdocs build --strict` passed
    log: str  # what the strict build printed
    sources: Dict[Path, str]  # the source files as they were when the build started


def _mkdocs(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'mkdocs', 'build', *args], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})


@pytest.fixture(scope='session')
def site_build(tmp_path_factory) -> SiteBuild:
    site = tmp_path_factory.mktemp('site')
    sources = {p: p.read_text(encoding='utf-8') for folder in SOURCE_DIRS for p in (ROOT / folder).rglob('*.py')}
    strict = _mkdocs('--strict', '--site-dir', str(site))
    if strict.returncode != 0:
        # Build anyway, so that the other tests still check the pages; the
        # strict build test reports the warnings.
        plain = _mkdocs('--site-dir', str(site))
        if plain.returncode != 0:
            pytest.fail(f"mkdocs build failed:\n{plain.stderr}")
    return SiteBuild(site, strict.returncode == 0, strict.stderr, sources)
