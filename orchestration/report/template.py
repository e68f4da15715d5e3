"""The report's HTML page (a Jinja2 template) and its inline stylesheet.

Self-contained on purpose: no scripts, no web fonts, no external images or
style sheets, so the file opens offline and can be mailed as one attachment.
"""

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --accent:#1b6ca8;
        --good:#2f855a; --warn:#b7791f; --bad:#c53030; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.5;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
                    "Liberation Sans", sans-serif; }
header.top { background: #102a43; color: #fff; padding: 28px 40px 22px; }
header.top h1 { margin: 0 0 4px; font-size: 1.9rem; font-weight: 650; letter-spacing: -.01em; }
header.top .sub { color: #bcccdc; }
header.top .chips { margin-top: 12px; display: flex; flex-wrap: wrap; gap: 8px; }
.chip { background: rgba(255,255,255,.1); border-radius: 4px; padding: 3px 9px;
        font-size: .82rem; color: #d9e2ec; }
header.top a { color: #9fd3ff; }
.layout { display: grid; grid-template-columns: 230px minmax(0, 1fr); gap: 28px;
          max-width: 1380px; margin: 0 auto; padding: 24px 28px 60px; }
nav.toc { position: sticky; top: 16px; align-self: start; background: #fff;
          border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
nav.toc h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em;
             color: var(--muted); margin: 0 0 8px; }
nav.toc ol { margin: 0; padding-left: 20px; }
nav.toc li { margin: 4px 0; }
nav.toc a { color: var(--ink); text-decoration: none; }
nav.toc a:hover { color: var(--accent); text-decoration: underline; }
main section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
               padding: 22px 28px; margin-bottom: 22px; }
main h2 { margin: 0 0 12px; font-size: 1.35rem; }
main h3 { margin: 22px 0 8px; font-size: 1.05rem; }
p.lead { font-size: 1.08rem; }
.note, figcaption { color: var(--muted); font-size: .9rem; }
.empty { color: var(--muted); font-style: italic; background: var(--bg);
         border-radius: 6px; padding: 12px 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(135px, 1fr));
         gap: 12px; margin: 6px 0 18px; }
.card { border: 1px solid var(--line); border-left: 4px solid var(--accent);
        border-radius: 6px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: .8rem; text-transform: uppercase;
               letter-spacing: .04em; }
.card .value { font-size: 1.55rem; font-weight: 650; }
.card.risk { border-left-color: var(--bad); }
ol.actions { padding-left: 22px; }
ol.actions li { margin: 6px 0; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: 8px 0 4px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; text-transform: uppercase;
     letter-spacing: .03em; background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td:has(> .swatch) { min-width: 11em; }
.wrap { overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
          margin-right: 7px; vertical-align: -1px; }
figure.chart { margin: 14px 0 6px; }
figure.chart svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figure.chart svg * { stroke-linejoin: round; stroke-linecap: butt; }
figcaption { margin-top: 6px; max-width: 900px; }
.status { font-weight: 600; white-space: nowrap; }
.status.ok { color: var(--good); } .status.warn { color: var(--warn); }
.status.bad { color: var(--bad); }
footer { color: var(--muted); font-size: .85rem; text-align: center; padding: 10px; }
@media (max-width: 900px) { .layout { grid-template-columns: 1fr; } nav.toc { position: static; } }
@media print { body { background: #fff; } .layout { display: block; } nav.toc { display: none; }
               main section { break-inside: avoid; border: 0; } }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header class="top">
  <h1>{{ title }}</h1>
  <div class="sub">Data as of <strong>{{ as_of }}</strong> · report generated {{ generated }}
    · run <code>{{ run_id }}</code></div>
  <div class="chips">
    {% for chip in chips %}<span class="chip">{{ chip }}</span>{% endfor %}
    {% for link in header_links %}<span class="chip"><a href="{{ link.href }}">{{ link.text }}</a></span>{% endfor %}
  </div>
</header>
<div class="layout">
<nav class="toc" aria-label="Contents">
  <h2>Contents</h2>
  <ol>{% for s in sections %}<li><a href="#{{ s.id }}">{{ s.title }}</a></li>{% endfor %}</ol>
</nav>
<main>
{% for s in sections %}
<section id="{{ s.id }}">
  <h2>{{ s.title }}</h2>
  {{ s.body }}
</section>
{% endfor %}
</main>
</div>
<footer>Generated by custseg from the dbt marts of the DuckDB warehouse. Self-contained file:
  no scripts, fonts or images are loaded from the network.</footer>
</body>
</html>
"""
