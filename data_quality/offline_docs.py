"""Data Docs that work offline: Great Expectations' page views, with its CDN assets
served from the site's own ``static/vendor/`` folder.

Great Expectations 1.24 writes the URLs of 16 scripts and style sheets on public CDNs
(jQuery, Bootstrap, bootstrap-table, Vega, Font Awesome …) and its logo on S3 into every
page. Without the network the index lists no validation results (bootstrap-table draws
that list in JavaScript) and no page is styled. Its site builder takes a view class per
section and for the index (``view: {module_name, class_name}``), so these views render
with Great Expectations' own templates and then point each of those URLs at the same
file vendored from the npm registry (``data_quality/docs_assets/``, VENDOR.json; to
update them: ``python -m data_quality.vendor_assets``). The library is not patched;
great-expectations is pinned to 1.24.x because the URL list is read from its templates
(tests/test_offline_docs.py fails on any asset URL this list does not know).
"""

from __future__ import annotations

import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

ASSETS_DIR = Path(__file__).with_name("docs_assets")
VENDOR = "vendor"  # under the site's static/ folder


@dataclass(frozen=True)
class Asset:
    url: str  # as Great Expectations' templates write it (a query string is ignored)
    package: str  # npm package
    version: str
    file: str  # in the package
    extra: tuple[str, ...] = ()  # files it loads itself (fonts)

    @property
    def folder(self) -> str:
        return f"{self.package.rsplit('/', 1)[-1]}-{self.version}"

    @property
    def local(self) -> str:
        return f"{self.folder}/{self.file}"


_BT = "https://unpkg.com/bootstrap-table@"
_FC = "dist/extensions/filter-control/bootstrap-table-filter-control"
_FA_FONTS = tuple(
    f"webfonts/fa-{n}.woff2" for n in ("brands-400", "regular-400", "solid-900", "v4compatibility")
)
# One vendored file per URL. bootstrap-table's filter-control style sheet is asked for as
# 1.19.0 (and unminified on some pages) next to 1.19.1 for the rest: 1.19.1's minified one
# serves all; bootstrap-dark likewise its minified build.
ASSETS = (
    Asset(f"{_BT}1.19.1/dist/bootstrap-table.min.css", "bootstrap-table", "1.19.1",
          "dist/bootstrap-table.min.css"),
    Asset(f"{_BT}1.19.1/dist/bootstrap-table.min.js", "bootstrap-table", "1.19.1",
          "dist/bootstrap-table.min.js"),
    Asset(f"{_BT}1.19.0/{_FC}.min.css", "bootstrap-table", "1.19.1", f"{_FC}.min.css"),
    Asset(f"{_BT}1.19.0/{_FC}.css", "bootstrap-table", "1.19.1", f"{_FC}.min.css"),
    Asset(f"{_BT}1.19.1/{_FC}.min.js", "bootstrap-table", "1.19.1", f"{_FC}.min.js"),
    Asset("https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
          "bootstrap", "4.3.1", "dist/css/bootstrap.min.css"),
    Asset("https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
          "bootstrap", "4.3.1", "dist/js/bootstrap.min.js"),
    Asset("https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
          "bootstrap-datepicker", "1.9.0", "dist/css/bootstrap-datepicker.min.css"),
    Asset("https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
          "bootstrap-datepicker", "1.9.0", "dist/js/bootstrap-datepicker.min.js"),
    Asset("https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
          "@forevolve/bootstrap-dark", "1.1.0", "dist/css/bootstrap-prefers-dark.min.css"),
    Asset("https://cdn.jsdelivr.net/npm/vega@5", "vega", "5.33.1", "build/vega.min.js"),
    Asset("https://cdn.jsdelivr.net/npm/vega-lite@5", "vega-lite", "5.23.0",
          "build/vega-lite.min.js"),
    Asset("https://cdn.jsdelivr.net/npm/vega-embed@6", "vega-embed", "6.29.0",
          "build/vega-embed.min.js"),
    Asset("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css",
          "@fortawesome/fontawesome-free", "6.6.0", "css/all.min.css", _FA_FONTS),
    Asset("https://code.jquery.com/jquery-3.7.1.min.js", "jquery", "3.7.1", "dist/jquery.min.js"),
    Asset("https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js",
          "popper.js", "1.12.9", "dist/umd/popper.min.js"),
)  # fmt: skip
# The logo comes from Great Expectations' own static folder, which every site has.
LOGO_URL = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png"
LOGO = "images/logo-long.png"

_BY_URL = {a.url: a for a in ASSETS}
# An element that loads what an attribute names: scripts, style sheets, images.
_LOADING_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.S)
_URL_ATTR = re.compile(r'\b(src|href)="(https?://[^"?]*)(\?[^"]*)?"')
# Subresource integrity would make the browser fetch a file:// script in CORS mode, which
# it refuses; the vendored files are checked against these same hashes by the tests.
_SRI = re.compile(r'\s+(?:integrity|crossorigin)="[^"]*"')
_FAVICON = re.compile(r'href="(?:\.\./)*(?:\./)?static/images/favicon\.ico"')


def static_prefix(document) -> str:
    """The path from a page to the site's ``static/`` folder (GX's own page layout:
    ``validations/<suite>/<run>/<time>/<batch>.html``, ``expectations/<suite>.html``,
    a dot in a suite name being one more folder)."""
    doc = document.to_json_dict() if hasattr(document, "to_json_dict") else dict(document)
    kind = doc.get("renderer_type") or ""
    dots = (doc.get("expectation_suite_name") or "").count(".")
    if "ValidationResults" in kind or "ProfilingResults" in kind:
        depth = dots + 4
    elif "ExpectationSuite" in kind:
        depth = dots + 1
    else:
        depth = 0
    return "../" * depth + "static/" if depth else "./static/"


def localise(html: str, prefix: str) -> str:
    """``html`` with every known CDN asset pointed at ``prefix`` (the site's static/)."""

    def tag(match: re.Match) -> str:
        text = match.group(0)

        def url(m: re.Match) -> str:
            if m.group(2) == LOGO_URL:
                return f'{m.group(1)}="{prefix}{LOGO}"'
            asset = _BY_URL.get(m.group(2))
            if asset is None:
                return m.group(0)  # an unknown URL stays (and fails the offline test)
            return f'{m.group(1)}="{prefix}{VENDOR}/{asset.local}"'

        local = _URL_ATTR.sub(url, text)
        return _SRI.sub("", local) if local != text else text

    # GX's favicon link on validation pages is one folder short; the logo's is right.
    html = _FAVICON.sub(f'href="{prefix}images/favicon.ico"', html)
    return _LOADING_TAG.sub(tag, html)


class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept in memory for the process.

    Great Expectations' views build a new Jinja environment per page build, so each Data
    Docs build (one per validation) parsed and compiled the same templates again. Jinja
    keys a cached template by its name, file and source checksum, so a changed template
    is compiled afresh.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code

    def clear(self) -> None:
        with self._lock:
            self._code.clear()


# Shared by every view below: they all build the same environment (GX's DefaultJinjaView).
COMPILED_TEMPLATES = _CompiledTemplates()


class _Offline:
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = COMPILED_TEMPLATES

    def render(self, document, template=None, **kwargs):
        return localise(super().render(document, template, **kwargs), static_prefix(document))


class OfflinePageView(_Offline, DefaultJinjaPageView):
    """Expectation suite and validation result pages with local assets."""


class OfflineIndexPageView(_Offline, DefaultJinjaIndexPageView):
    """The Data Docs index with local assets."""


def _view(name: str) -> dict:
    return {"module_name": __name__, "class_name": name}


#: The parts of a GX ``SiteBuilder`` config that select these views.
SITE_VIEWS = {
    "site_index_builder": {
        "class_name": "DefaultSiteIndexBuilder",
        "view": _view("OfflineIndexPageView"),
    },
    "site_section_builders": {
        section: {"view": _view("OfflinePageView")}
        for section in ("expectations", "validations", "profiling")
    },
}


def vendored_files() -> list[str]:
    """Every vendored file, relative to ``ASSETS_DIR`` (and to the site's static/vendor/)."""
    return sorted({f"{a.folder}/{f}" for a in ASSETS for f in (a.file, *a.extra)})


def install_assets(docs_dir: str | Path) -> None:
    """Copy the vendored files into ``docs_dir/static/vendor/`` (those missing or changed)."""
    target = Path(docs_dir) / "static" / VENDOR
    for name in vendored_files():
        src, dest = ASSETS_DIR / name, target / name
        if dest.is_file() and dest.stat().st_size == src.stat().st_size:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
