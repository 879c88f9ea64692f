"""The run report in a real browser: headless Chromium loads it from a file:// URL, offline.

The page renders with its numbers, the filter script runs under the page's Content-Security-Policy,
nothing hostile from the data runs, the console has no error, and it prints.  Uses the sweep
report's browser helpers; skipped, saying so, without Debian's ``chromium``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.reports.output import write_atomic
from orchestrator.reports.runhtml import render_run_html
from orchestrator.store import Store
from tests.reports.test_chromium import CHROMIUM, chromium, console_errors
from tests.reports.test_run_report import failed, fixed, not_run, report_of, rolled_back, store_run

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="headless browser test needs Debian's chromium at /usr/bin/chromium: apt-get install -y chromium",
)
INJECTED = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture
def page(sqlite_store: Store, tmp_path: Path) -> Path:
    hostile = fixed(
        f"ep-0002{INJECTED}", 2, after=f"</span><script>document.title='pwned'</script>{INJECTED}"
    )
    run_id = store_run(
        sqlite_store,
        [
            fixed("ep-0001"),
            hostile,
            rolled_back("ep-0003", 2),
            failed("ep-0004", 3),
            not_run("ep-0005", "skipped", INJECTED, "locked", 3),
        ],
        status="failed",
        status_message=f"failure budget exceeded {INJECTED}",
        params={"note": INJECTED},
    )
    path = tmp_path / "run.html"
    write_atomic(path, render_run_html(report_of(sqlite_store, run_id)))
    return path


def test_the_run_report_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    result = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert re.search(r'id="targets-total">5<', dom)
    assert re.search(r'id="count-rolled_back">1<', dom)
    assert re.search(r'id="changes-applied">2<', dom)
    # the filter script ran (the page's CSP allows exactly it) and showed its form
    assert '<form id="filters">' in dom
    assert re.search(r'id="filter-count" class="muted">5 of 5 targets shown<', dom)
    # nothing from the data ran
    title = re.search(r"<title>(.*?)</title>", dom, flags=re.DOTALL)
    assert title is not None
    assert "pwned" not in title.group(1)
    assert "&lt;img src=x onerror=" in dom
    assert console_errors(result.stderr) == []


def test_screenshot_and_print(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "run.png"
    shot = chromium(
        tmp_path, page.as_uri(), "--hide-scrollbars", "--window-size=1280,2000", f"--screenshot={png}"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = tmp_path / "run.pdf"
    printed = chromium(tmp_path, page.as_uri(), "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert printed.returncode == 0, printed.stderr[-2000:]
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert pages >= 5  # summary, playbook, plan, waves and audit each start a page
