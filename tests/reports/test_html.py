"""The HTML report: self-contained, escaped, readable without script, printable, shipped."""

from __future__ import annotations

import base64
import hashlib
import re
import tomllib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from orchestrator.reports.html import CONTENT_SECURITY_POLICY, FILTER_SCRIPT, SWEEP_TEMPLATE, sweep_html
from orchestrator.reports.model import SweepReport, build_sweep_report
from orchestrator.reports.source import catalogue_checks, load_sweep_data, report_sweep
from orchestrator.store import Store
from tests.reports.support import T0, down, finding, ok, record_sweep

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_HOST = "<img src=x onerror=alert(1)>"
HOSTILE_EVIDENCE = "</script><script>alert('evidence')</script>"


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def hostile_report(store: Store) -> SweepReport:
    hosts = [ok(HOSTILE_HOST), ok("EP-2"), down("EP-3", message="<b>refused</b> & gone")]
    findings = [
        finding(
            HOSTILE_HOST,
            "EP-CERT-01",
            "<svg onload=alert(2)>",
            message='=HYPERLINK("http://evil.example")',
            evidence={"reason": "missing", "subject": HOSTILE_EVIDENCE, "nested": {"k": ["<i>", 1]}},
        ),
        finding("EP-2", "RRAS-AUTH-01", "root", severity="critical", playbook=None, advice="<b>do it</b>"),
    ]
    record_sweep(store, T0 - timedelta(days=1), hosts, findings[:1])
    record_sweep(store, T0, hosts, findings, notes=["<marquee>note</marquee>"], selector="name:<x>")
    with store.transaction() as session:
        run = report_sweep(session, None)
        data = load_sweep_data(
            session,
            run,
            trend=10,
            sites={HOSTILE_HOST.casefold(): "<ams>"},
            checks=catalogue_checks(),
            generated_at=datetime(2026, 3, 1, 3, 0, tzinfo=UTC),
        )
    return build_sweep_report(data)


@pytest.fixture
def page(sqlite_store: Store) -> str:
    return sweep_html(hostile_report(sqlite_store))


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_hostile_values_are_escaped(page: str) -> None:
    tags = parsed(page)
    assert [tag for tag, _ in tags.tags if tag in {"img", "svg", "script", "marquee", "b", "i"}].count(
        "img"
    ) == 0
    assert [tag for tag, _ in tags.tags].count("script") == 1  # the filter script, nothing else
    assert "marquee" not in [tag for tag, _ in tags.tags]
    assert not [attrs for _, attrs in tags.tags if any(name.startswith("on") for name in attrs)]
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/script&gt;&lt;script&gt;alert(&#39;evidence&#39;)&lt;/script&gt;" in page
    assert "&lt;marquee&gt;note&lt;/marquee&gt;" in page
    assert "&lt;b&gt;do it&lt;/b&gt;" in page
    assert "&lt;b&gt;refused&lt;/b&gt; &amp; gone" in page
    assert "&lt;ams&gt;" in page
    assert "name:&lt;x&gt;" in page


def test_the_page_is_self_contained(page: str) -> None:
    tags = parsed(page)
    loading = [(tag, attrs) for tag, attrs in tags.tags if {"src", "href"} & attrs.keys() or tag == "link"]
    assert loading == []
    assert "@import" not in page
    assert "url(" not in page
    meta = [attrs for tag, attrs in tags.tags if tag == "meta" and attrs.get("http-equiv")]
    assert meta == [{"http-equiv": "Content-Security-Policy", "content": CONTENT_SECURITY_POLICY}]
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    (script,) = tags.scripts
    assert script == FILTER_SCRIPT
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY


def test_the_content_is_there_without_script(page: str) -> None:
    without = re.sub(r"<script>.*?</script>", "", page, flags=re.DOTALL)
    assert re.search(r'id="hosts-selected">3<', without)
    assert re.search(r'id="hosts-compliant">0<', without)
    assert re.search(r'id="findings-total">2<', without)
    assert re.search(r'id="findings-new">1<', without)
    assert re.search(r'id="findings-open">1<', without)
    assert "RRAS-AUTH-01" in without
    assert "device-cert-reenroll" in without  # the suggested playbook
    assert "the login was refused" not in without  # (not this fleet's error)
    assert "&lt;b&gt;refused&lt;/b&gt;" in without  # the unreachable host's error
    assert '<form id="filters" hidden>' in without  # the filter appears only with script
    assert without.count("<svg") == 6


def test_print_styles(page: str) -> None:
    style = page.split("@media print", 1)[1]
    for rule in ("break-before: page", "thead { display: table-header-group; }", "break-inside: avoid"):
        assert rule in style
    assert "overflow: visible" in style  # wide tables are not clipped on paper


def test_an_empty_report_renders(sqlite_store: Store) -> None:
    record_sweep(sqlite_store, T0, [], [], notes=["no host was selected"])
    with sqlite_store.transaction() as session:
        data = load_sweep_data(
            session,
            report_sweep(session, None),
            trend=5,
            sites={},
            checks=(),
            generated_at=T0,
            inventory_loaded=False,
        )
    page = sweep_html(build_sweep_report(data))
    assert re.search(r'id="hosts-selected">0<', page)
    assert "No findings." in page
    assert "no inventory was available" in page
    assert "no host was selected" in page


def test_the_template_ships_as_package_data() -> None:
    template = resources.files("orchestrator.reports").joinpath("templates", SWEEP_TEMPLATE)
    assert template.is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = config["tool"]["setuptools"]["package-data"]["orchestrator"]
    assert "reports/templates/*.j2" in package_data
