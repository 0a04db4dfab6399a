"""
labml's dashboard as a user meets it: started with `python -m experiments.dashboard`,
two tiny CIFAR-10 runs reporting to it at once, its page in Debian's Chromium
(Playwright), every request the page makes recorded; then stopped with Ctrl-C
and started again on the same store. Screenshots go to `artifacts/screenshots/`.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port, start_run
from experiments.runner.dashboard_client import EXIT_WAIT_S

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
SCREENSHOTS = ROOT / 'artifacts' / 'screenshots'
EPOCHS = 4

if not Path(CHROMIUM).exists():
    if os.environ.get('CI'):
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium`", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI runs this test",
                allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


def finished(process, timeout=180) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-3000:]
    return out


def run_folder(out: str) -> Path:
    return Path(re.search(r'run folder (\S+)', out).group(1))


def tracked_steps(run: Path, key: str):
    """The steps at which the run's own log (labml's file writer) has `key`."""
    steps = []
    for line in (run / 'log.jsonl').read_text().splitlines():
        steps += [step for step, _ in json.loads(line).get('track', {}).get(key, [])]
    return steps


def listed_runs(address: str):
    with urllib.request.urlopen(f'{address}/api/v1/runs/null', timeout=10) as response:
        return {r['run_uuid']: r for r in json.loads(response.read())['runs']}


def curve_points(path_d: str) -> int:
    """The data points of a d3 line: its first point, then one per segment."""
    return 1 + len(re.findall(r'[CL]', path_d))


def look_at_run(browser, address: str, runs, width: int, screenshot: str = '') -> int:
    """
    Open the dashboard at `width`, check that it lists `runs`, open the first
    one's page; the number of points of its loss curve. Every request the page
    makes goes to the dashboard.
    """
    context = browser.new_context(viewport={'width': width, 'height': 900})
    page = context.new_page()
    requests, errors = [], []
    page.on('request', lambda r: requests.append(r.url))
    page.on('console', lambda m: m.type == 'error' and errors.append(m.text))
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(address + '/', wait_until='networkidle')

    # The list names the runs; the first one opens its page
    for run in runs:
        assert page.locator(f'a.list-item[href="/run/{run.name}"] h5').inner_text() == 'cifar10'
    page.locator(f'a.list-item[href="/run/{runs[0].name}"]').click()
    page.wait_for_url(f'**/run/{runs[0].name}')
    page.wait_for_selector('#chart path.unsmoothed-line')
    page.wait_for_load_state('networkidle')

    # The loss curve is the line of the colour of its name under the chart
    color = page.locator('.sparkline-list .title', has_text='loss.train').first \
        .evaluate('e => getComputedStyle(e).color')
    line = page.locator(f'#chart path.unsmoothed-line[stroke="{color}"]')
    assert line.count() == 1
    points = curve_points(line.get_attribute('d'))
    # Font Awesome's icons drew: a missing font leaves them zero-wide
    assert page.locator('.fas.fa-chevron-left').first.bounding_box()['width'] > 0
    if screenshot:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
    context.close()

    assert not errors, errors
    # Nothing leaves the machine
    assert requests
    outside = [u for u in requests if not u.startswith(address + '/')]
    assert not outside, outside
    return points


def test_runs_on_the_dashboard_offline_and_kept(start_dashboard, synthetic_cifar, tmp_path):
    store, logs = tmp_path / 'store', tmp_path / 'logs'
    dashboard = start_dashboard(store)
    assert dashboard.first_line == (f"labml dashboard at {dashboard.address} "
                                    f"(runs kept in {store}); Ctrl-C stops it")

    # Two runs at once, both reporting
    first = start_run(dashboard.address, synthetic_cifar, logs, EPOCHS)
    second = start_run(dashboard.address, synthetic_cifar, logs, EPOCHS - 1)
    runs = [run_folder(finished(first)), run_folder(finished(second))]
    steps = tracked_steps(runs[0], 'loss.train')
    assert steps == list(range(1, EPOCHS + 1))
    listed = listed_runs(dashboard.address)
    assert all(listed[r.name]['run_status']['status'] == 'completed' for r in runs)
    # labml-app would answer this with /etc/passwd
    with pytest.raises(urllib.error.HTTPError, match='404'):
        urllib.request.urlopen(f'{dashboard.address}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd')
    # A second dashboard on the same port says so in one line
    busy = subprocess.run([sys.executable, '-m', 'experiments.dashboard', '--port',
                           str(dashboard.port), '--store', str(tmp_path / 'other')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert busy.returncode == 1 and busy.stdout == ''
    assert busy.stderr == (f"error: cannot listen on 127.0.0.1:{dashboard.port} (Address already "
                           "in use): choose another with --port\n")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width in (1280, 390):
            points = look_at_run(browser, dashboard.address, runs, width, f'dashboard-{width}.png')
            assert points == len(steps)

        # Ctrl-C stops it; started again on the same store, the runs are there
        assert dashboard.stop() == 0
        assert dashboard.lines.get(timeout=5) == 'dashboard stopped'
        again = start_dashboard(store)
        assert look_at_run(browser, again.address, runs, 1280) == len(steps)
        browser.close()


def test_run_without_dashboard_trains_on_and_says_so_once(synthetic_cifar, tmp_path):
    address = f'http://127.0.0.1:{free_port()}'
    start = time.monotonic()
    out = finished(start_run(address, synthetic_cifar, tmp_path, 2))
    note = f"no dashboard answers at {address}: the run trains on and logs to its own folder only"
    assert out.splitlines().count(note) == 1
    assert 'Retrying' not in out and 'Failed to connect' not in out
    run = run_folder(out)
    assert tracked_steps(run, 'loss.train') == [1, 2]
    assert [r['epoch'] for r in json.loads((run / 'summary.json').read_text())['history']] == [1, 2]
    assert time.monotonic() - start < 60


def test_run_finishes_when_the_dashboard_goes_away(start_dashboard, synthetic_cifar, tmp_path):
    dashboard = start_dashboard(tmp_path / 'store')
    run = start_run(dashboard.address, synthetic_cifar, tmp_path / 'logs', 3)
    # The dashboard dies during the run's first epoch
    for line in run.stdout:
        if line.startswith('epoch 1/3'):
            dashboard.stop(signal.SIGKILL)
            break
    stopped = time.monotonic()
    out = finished(run)
    # labml's client retries after 10 s, 20 s, ...; the run waits EXIT_WAIT_S at most
    assert time.monotonic() - stopped < EXIT_WAIT_S + 30
    assert "the dashboard did not take the run's last data" in out
    assert tracked_steps(run_folder(out), 'loss.train') == [1, 2, 3]
