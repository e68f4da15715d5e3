"""Data Docs work offline: every asset a page loads is a vendored local file, and in
headless Chromium with no network the index lists the results of every suite, styled
(data_quality/offline_docs.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import great_expectations as gx
import pytest

from data_quality.offline_docs import (
    ASSETS,
    ASSETS_DIR,
    COMPILED_TEMPLATES,
    LOGO_URL,
    OfflinePageView,
    vendored_files,
)
from tests.cdp import Page

GX_TEMPLATES = Path(gx.__file__).parent / "render" / "view" / "templates"
LOADS = re.compile(r'<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]+)"', re.S)


@pytest.fixture(scope="module")
def docs(published_demo) -> Path:
    index = published_demo / "reports" / "data_docs" / "index.html"
    assert index.is_file(), "the pipeline run wrote no Data Docs"
    return index.parent


def suites(workdir: Path) -> list[str]:
    folder = workdir / "gx" / "expectations"
    names = sorted(json.loads(p.read_text())["name"] for p in folder.glob("*.json"))
    assert names, f"no expectation suites in {folder}"
    return names


def test_every_page_loads_only_files_of_the_site(docs):
    pages = sorted(docs.rglob("*.html"))
    assert any("validations" in p.parts for p in pages) and any(
        "expectations" in p.parts for p in pages
    )
    for page in pages:
        for ref in LOADS.findall(page.read_text(encoding="utf-8")):
            assert not re.match(r"[a-z]+://", ref), f"{page.relative_to(docs)} loads {ref}"
            assert (page.parent / ref.split("?")[0]).resolve().is_file(), (
                f"{page.relative_to(docs)}: {ref} is missing"
            )


def test_vendored_files_are_those_of_the_lock_and_of_gx_integrity_hashes():
    lock = json.loads((ASSETS_DIR / "VENDOR.json").read_text())
    locked = {}
    for package in lock:
        folder = f"{package['package'].rsplit('/', 1)[-1]}-{package['version']}"
        locked |= {f"{folder}/{name}": sha for name, sha in package["files"].items()}
    assert sorted(locked) == vendored_files()
    for name, sha in locked.items():
        assert hashlib.sha256((ASSETS_DIR / name).read_bytes()).hexdigest() == sha, name
    # GX declares subresource integrity for two scripts: the vendored bytes are the CDN's.
    imports = (GX_TEMPLATES / "js_script_imports.j2").read_text()
    by_url = {a.url: a for a in ASSETS}
    declared = re.findall(r'src="([^"]+)" integrity="sha384-([^"]+)"', imports)
    assert len(declared) == 2
    for url, digest in declared:
        data = (ASSETS_DIR / by_url[url].local).read_bytes()
        assert base64.b64encode(hashlib.sha384(data).digest()).decode() == digest, url


def test_views_share_compiled_templates_and_render_the_same_pages():
    """A view compiles GX's templates once per process; the pages are those of a view
    that compiles every template itself."""
    from great_expectations.render.renderer import ExpectationSuitePageRenderer

    def page(cache: bool) -> tuple[str, list[str]]:
        suite = gx.ExpectationSuite(
            name="orders",
            expectations=[
                gx.expectations.ExpectColumnValuesToNotBeNull(column="order_id"),
                gx.expectations.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
            ],
        )
        view = OfflinePageView()
        assert view.env.bytecode_cache is COMPILED_TEMPLATES
        if not cache:
            view.env.bytecode_cache = None
        compiled, compile_ = [], view.env.compile
        view.env.compile = lambda source, name=None, *a, **k: (
            compiled.append(name) or compile_(source, name, *a, **k)
        )
        html = view.render(ExpectationSuitePageRenderer().render(suite))
        # Links may carry the time of rendering, and element ids may be random.
        html = re.sub(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", "<uuid>", html)
        return re.sub(r"\d{8}T\d{6}\.\d+Z", "<time>", html), compiled

    COMPILED_TEMPLATES.clear()
    uncached, compiled_uncached = page(cache=False)
    cold, compiled_cold = page(cache=True)
    warm, compiled_warm = page(cache=True)
    assert "order_id" in uncached and "amount" in uncached
    assert len(compiled_uncached) >= 5 and sorted(compiled_cold) == sorted(compiled_uncached)
    assert compiled_warm == []
    assert cold == uncached and warm == uncached


def test_the_asset_list_covers_every_cdn_url_of_the_pinned_gx():
    """A newer Great Expectations may load other files: this fails until ASSETS knows them."""
    assert gx.__version__.startswith("1.24."), "offline_docs.ASSETS was read from GX 1.24"
    urls = set()
    for template in GX_TEMPLATES.glob("*.j2"):
        text = template.read_text()
        urls |= {u for u in LOADS.findall(text) if u.startswith("http")}
        urls |= set(re.findall(r'static_images_dir = "(https://[^"]+)"', text))
    known = {a.url for a in ASSETS} | {LOGO_URL.rsplit("/", 1)[0] + "/"}
    assert urls == known


def test_index_lists_every_suite_styled_in_a_browser_without_network(published_demo, docs):
    with Page((docs / "index.html").as_uri(), offline=True) as page:
        # bootstrap-table draws the list (10 rows a page) from the data in the page.
        table = "table.ge-index-page-validation-results-table"
        drawn = page.eval(f"document.querySelectorAll('{table} tbody tr').length")
        listed = page.eval(
            f"$('{table}').bootstrapTable('getData', {{useCurrentPage: false}})"
            ".map(row => row._expectation_suite_name_sort)"
        )
        assert drawn == min(10, len(listed))
        info = page.eval("document.querySelector('.pagination-info').innerText")
        assert f"of {len(listed)} rows" in info
        for suite in suites(published_demo):
            assert suite in listed, f"no validation result of {suite} listed"
        # Bootstrap styles the navigation bar (sticky-top) and the buttons (btn-primary).
        assert page.eval("getComputedStyle(document.querySelector('nav.navbar')).position") == (
            "sticky"
        )
        assert (
            page.eval("getComputedStyle(document.querySelector('.btn-primary')).backgroundColor")
            == "rgb(0, 123, 255)"
        )
        # The status icons: Font Awesome's font, loaded from the site.
        assert (
            page.eval(
                "document.fonts.ready.then(() => [...document.fonts].filter(f => "
                "f.family.includes('Font Awesome') && f.status === 'loaded').length)"
            )
            >= 1
        )
        assert page.eval("typeof jQuery.fn.bootstrapTable + typeof vegaEmbed") == "functionfunction"
        # And nothing off the machine answers (an image loads across origins when online).
        assert (
            page.eval(
                "new Promise(done => { const i = new Image(); i.onload = () => done('online'); "
                "i.onerror = () => done('offline'); i.src = 'https://www.google.com/favicon.ico'; })"
            )
            == "offline"
        )
