"""The HTML report in a real browser: headless Chromium loads it from a file:// URL, offline.

Checks that the page renders with its numbers, that the filter script ran under the page's
Content-Security-Policy, that nothing hostile in the data ran, that the console has no error, and
that it prints to several pages.  Needs Debian's ``chromium`` (``apt-get install -y chromium``);
skipped, saying so, without it.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.reports.html import render_sweep_html
from orchestrator.reports.model import build_sweep_report
from orchestrator.reports.output import write_atomic
from orchestrator.reports.source import catalogue_checks, load_sweep_data, report_sweep
from orchestrator.store import Store
from tests.reports.support import T0, down, finding, ok, record_sweep

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="headless browser test needs Debian's chromium at /usr/bin/chromium: apt-get install -y chromium",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
INJECTED = "<img src=x onerror=\"document.title='pwned'\">"


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if "Uncaught" in line or "Content Security Policy" in line or "Refused to" in line
    ]


@pytest.fixture
def page(sqlite_store: Store, tmp_path: Path) -> Path:
    hosts = [ok("EP-1"), ok(INJECTED), ok("EP-3"), down("EP-4", message="<script>alert(1)</script>")]
    findings = [
        finding(
            "EP-1", evidence={"reason": "missing", "note": "</dd><script>document.title='pwned'</script>"}
        ),
        finding(INJECTED, "RRAS-AUTH-01", "root", severity="critical"),
    ]
    record_sweep(sqlite_store, T0 - timedelta(days=1), hosts, findings[:1])
    record_sweep(sqlite_store, T0, hosts, findings)
    with sqlite_store.transaction() as session:
        data = load_sweep_data(
            session,
            report_sweep(session, None),
            trend=10,
            sites={"ep-1": "ams"},
            checks=catalogue_checks(),
            generated_at=datetime.now(UTC),
        )
    path = tmp_path / "sweep.html"
    write_atomic(path, render_sweep_html(build_sweep_report(data)))
    return path


def test_the_report_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    result = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert re.search(r'id="hosts-selected">4<', dom)
    assert re.search(r'id="hosts-with-findings">2<', dom)
    assert re.search(r'id="findings-total">2<', dom)
    assert re.search(r'id="findings-new">1<', dom)
    # the filter script ran (the page's CSP allows exactly it) and showed its form
    assert '<form id="filters">' in dom
    assert re.search(r'id="filter-count" class="muted">2 of 2 shown<', dom)
    # nothing from the data ran
    title = re.search(r"<title>(.*?)</title>", dom, flags=re.DOTALL)
    assert title is not None
    assert "pwned" not in title.group(1)
    assert "&lt;img src=x onerror=" in dom
    assert console_errors(result.stderr) == []


def test_console_errors_would_be_seen(tmp_path: Path) -> None:
    """The check above can fail: a page whose script throws is caught by the same scan."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><title>t</title><script>undefinedFunction();</script>")
    result = chromium(tmp_path, broken.as_uri(), "--dump-dom")
    assert result.returncode == 0
    assert console_errors(result.stderr)


def test_screenshot_and_print(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "sweep.png"
    shot = chromium(
        tmp_path, page.as_uri(), "--hide-scrollbars", "--window-size=1280,2000", f"--screenshot={png}"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = tmp_path / "sweep.pdf"
    printed = chromium(tmp_path, page.as_uri(), "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert printed.returncode == 0, printed.stderr[-2000:]
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert pages >= 8  # sections start on a new page
