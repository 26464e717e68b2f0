"""The data audit as a page a person reads: ``audit.html``, from the result ``catdog-zoo audit`` computes.

:func:`render_audit_page` turns the result (the same dict written to ``audit.json``) into one
self-contained HTML document: inline CSS, thumbnails as data URIs, no script and no external
resource (a Content-Security-Policy says so too), so it opens from disk in any browser, phone-width
included. Every string of the result (paths, class and split names, notes, method texts) is
untrusted and shown as :mod:`catdog_zoo.util.names` decides for every output: escape sequences, control
characters, line breaks and bidi controls as visible ``\\xNN`` / ``\\uNNNN`` (as on the terminal), bytes
that are not UTF-8 as ``\\xNN``, then HTML-escaped, in text and attributes alike.
"""

from __future__ import annotations

import html
import os
import re
from typing import Callable

from ..util import names

AUDIT_PAGE = "audit.html"
AUDIT_JSON = "audit.json"
LIMIT = 100  # items shown per section; the rest are counted and left to audit.json

_DATA_URI = re.compile(r"data:image/(?:jpeg|png|gif|webp);base64,[A-Za-z0-9+/]*={0,2}")

MEANING = {
    "label_issues": "The score is how sure the model is that the image shows the suggested class rather "
                    "than the class of its folder (0 to 1, higher is more suspicious).",
    "duplicates": "The similarity is how alike the images' features are (1 means the same picture).",
    "off_topic": "The score is how unlike every class the image looks (higher is more off-topic); "
                 "images above the audit's threshold are flagged.",
}

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222;
       line-height: 1.4; }
h1 { margin-bottom: 0; overflow-wrap: anywhere; } .sub { color: #666; margin-top: 0.2em; }
nav a { margin-right: 1em; } a:focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; margin: 1.5em 0; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.8em 1.2em; min-width: 8em; }
.card b { display: block; font-size: 1.6em; } .card.bad { border: 2px solid #c01c28; color: #a51d2d; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #eee; padding: 0.25em 1em 0.25em 0; text-align: left; overflow-wrap: anywhere; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.notes { list-style: none; padding: 0; }
.notes li { border-left: 5px solid #e5a50a; background: #fdf6e3; padding: 0.5em 0.8em; margin: 0.4em 0; }
.grid { display: grid; gap: 1em; grid-template-columns: repeat(auto-fill, minmax(min(100%, 11em), 1fr)); }
.grid.wide { grid-template-columns: repeat(auto-fill, minmax(min(100%, 22em), 1fr)); }
.item { border: 1px solid #ddd; border-radius: 8px; padding: 0.6em; margin: 0; }
.item img, .noimg { display: block; width: 100%; aspect-ratio: 1; object-fit: cover; border: 1px solid #eee;
                    border-radius: 4px; }
.noimg { background: #ccc; color: #333; display: flex; align-items: center; justify-content: center; }
.path { font-family: ui-monospace, monospace; font-size: 0.85em; overflow-wrap: anywhere; margin: 0.4em 0 0.2em; }
.item p { margin: 0.2em 0; } .score { font-variant-numeric: tabular-nums; }
.group { display: grid; gap: 0.5em; grid-template-columns: repeat(auto-fill, minmax(min(100%, 8em), 1fr)); }
.group figure { margin: 0; }
.leak { background: #c01c28; color: #fff; font-weight: 700; padding: 0.4em 0.6em; border-radius: 4px; }
.item.across, .item.flagged { border: 2px solid #c01c28; background: #fff5f5; }
.badge { display: inline-block; font-weight: 600; font-size: 0.8em; padding: 0 0.4em; border-radius: 4px;
         background: #eee; } .flagged .badge { background: #c01c28; color: #fff; }
.muted { color: #555; border-style: dashed; } .muted img { opacity: 0.55; }
.more { font-style: italic; }
@media (max-width: 480px) { body { margin: 1em auto; } .card { flex: 1 1 40%; min-width: 0; } }
"""


def clean(value) -> str:
    """``value`` as text fit to display: :func:`catdog_zoo.util.names.terminal`, the one way a name is shown
    (escape sequences, control characters, line breaks, bidi controls and undecodable bytes made visible)."""
    return names.terminal(value)


def _t(value) -> str:
    """Untrusted ``value`` as HTML text or attribute value (:func:`catdog_zoo.util.names.html`)."""
    return names.html(value)


def _number(value, digits: int = 3) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def _count(value) -> str:
    """A count as plain (unescaped) text."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return clean(value) or "-"


def _thumb(path, alt: str, thumbnail: Callable[[str], str | None]) -> str:
    """The image for ``path``, or a grey "no preview" box; anything but an image data URI counts as none."""
    uri = thumbnail(path) if path else None
    if isinstance(uri, str) and _DATA_URI.fullmatch(uri):
        return f'<img src="{html.escape(uri, quote=True)}" alt="{_t(alt)}" loading="lazy">'
    return f'<div class="noimg" role="img" aria-label="{_t("no preview: " + alt)}">no preview</div>'


def _path(path, data) -> str:
    full = os.path.join(clean(data), clean(path)) if data else clean(path)
    return f'<p class="path" title="{html.escape(full, quote=True)}">{_t(path)}</p>'


def _label_card(item: dict, data, thumbnail) -> str:
    path, given, suggested = item.get("path"), item.get("given"), item.get("suggested")
    alt = f"{clean(path)}: in folder {clean(given)}, looks like {clean(suggested)}"
    return (f'<figure class="item">{_thumb(path, alt, thumbnail)}<figcaption>{_path(path, data)}'
            f'<p>folder: <b>{_t(given)}</b> -&gt; looks like: <b>{_t(suggested)}</b></p>'
            f'<p>{_t(item.get("split"))} split, score <span class="score">{_number(item.get("score"))}</span></p>'
            f'</figcaption></figure>')


def _spans(splits: list) -> str:
    """"train and validation", "train, validation and test"."""
    spans = list(dict.fromkeys(_t(s) for s in splits if clean(s)))
    if len(spans) < 2:
        return "more than one split"
    return ", ".join(spans[:-1]) + " and " + spans[-1]


def _duplicate_card(group: dict, data, thumbnail) -> str:
    paths = list(group.get("paths") or [])
    splits = list(group.get("splits") or [])
    splits += [None] * (len(paths) - len(splits))
    figures = ""
    for i, (path, split) in enumerate(zip(paths, splits)):
        alt = f"{clean(path)} ({clean(split) or 'split unknown'}), copy {i + 1} of {len(paths)}"
        figures += (f'<figure>{_thumb(path, alt, thumbnail)}<figcaption>{_path(path, data)}<p>{_t(split)}</p>'
                    f'</figcaption></figure>')
    across = bool(group.get("across_splits"))
    banner = f'<p class="leak">LEAKAGE: this group spans {_spans(splits)}</p>' if across else ""
    return (f'<article class="item{" across" if across else ""}">{banner}<div class="group">{figures}</div>'
            f'<p>{len(paths)} images, similarity <span class="score">{_number(group.get("similarity"))}</span>'
            f'</p></article>')


def _off_topic_card(item: dict, data, thumbnail) -> str:
    path, flagged = item.get("path"), bool(item.get("flagged"))
    score = _number(item.get("score"))
    alt = f"{clean(path)}, off-topic score {score}" + (", flagged" if flagged else "")
    return (f'<figure class="item {"flagged" if flagged else "muted"}">{_thumb(path, alt, thumbnail)}'
            f'<figcaption>{_path(path, data)}<p><span class="badge">{"flagged" if flagged else "not flagged"}'
            f'</span> {_t(item.get("split"))} split, score <span class="score">{score}</span></p>'
            f'</figcaption></figure>')


def _section(anchor: str, title: str, items: list, meaning, limit: int, card, wide: bool = False) -> str:
    shown = items[:limit]
    if not items:
        told = "None found."
    elif len(shown) == len(items):
        told = f"Showing all {len(items)}, most suspicious first."
    else:
        told = f"Showing the {len(shown)} most suspicious of {len(items)}."
    grid = (f'<div class="grid{" wide" if wide else ""}">{"".join(card(item) for item in shown)}</div>'
            if shown else "")
    more = (f'<p class="more">... and {len(items) - len(shown)} more in {AUDIT_JSON}</p>'
            if len(items) > len(shown) else "")
    return (f'<section id="{anchor}" aria-labelledby="{anchor}-h"><h2 id="{anchor}-h">{title} ({len(items)})</h2>'
            f'<p class="how">{_t(_sentence(meaning))} {told}</p>{grid}{more}</section>\n')


def _sentence(text) -> str:
    text = clean(text).strip()
    return text + "." if text and text[-1] not in ".!?" else text


def _splits_table(split_counts: dict, class_names: list) -> str:
    if not split_counts:
        return ""
    columns = list(dict.fromkeys([*class_names, *(c for counts in split_counts.values() for c in (counts or {}))]))
    head = "".join(f"<th scope=\"col\">{_t(c)}</th>" for c in columns)
    rows = "".join(
        f'<tr><th scope="row">{_t(split)}</th>'
        + "".join(f'<td class="n">{_t(_count((counts or {}).get(c, 0)))}</td>' for c in columns) + "</tr>"
        for split, counts in split_counts.items())
    return f'<h2>Images per split</h2><table><tr><th scope="col">split</th>{head}</tr>{rows}</table>\n'


def _notes(notes: list) -> str:
    if not notes:
        return "<h2>Notes</h2><p>No notes on class balance or split sizes.</p>\n"
    items = "".join(f"<li><strong>Warning:</strong> {_t(note)}</li>" for note in notes)
    return f'<h2>Notes</h2><ul class="notes">{items}</ul>\n'


def _subtitle(result: dict) -> str:
    classes = [clean(c) for c in result.get("class_names") or []]
    sizes = ", ".join(f"{clean(s)} {sum(_int(v) for v in (c or {}).values())}"
                      for s, c in (result.get("split_counts") or {}).items())
    parts = [f"{_count(result.get('num_images'))} images in {len(classes)} classes ({', '.join(classes)})",
             f"layout {clean(result.get('layout')) or '-'}" + (f": {sizes}" if sizes else "")]
    features = result.get("features") or {}
    if features:
        size = "x".join(clean(n) for n in features.get("image_size") or [])
        parts.append(f"features from {clean(features.get('model'))} ({clean(features.get('engine'))}"
                     + (f", {size}" if size else "") + ")")
    if result.get("seed") is not None:
        parts.append(f"seed {clean(result.get('seed'))}")
    if result.get("seconds") is not None:
        parts.append(f"{_number(result.get('seconds'), 1)} s")
    return html.escape("; ".join(parts), quote=True)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def render_audit_page(result: dict, thumbnail: Callable[[str], str | None], *, limit: int = LIMIT) -> str:
    """The audit as one self-contained HTML document.

    ``result``: what the audit found (the dict written to ``audit.json``; every list most suspicious
    first). ``thumbnail(path)``: a ``data:image/...;base64,`` URI for a path of the result as given
    (relative to ``result["data"]``), or None, shown as a grey "no preview" box; it is called only
    for the items shown. ``limit``: the most items shown per section; the rest are counted.
    """
    limit = max(0, int(limit))
    data = result.get("data")
    labels = list(result.get("label_issues") or [])
    groups = list(result.get("duplicates") or [])
    off_topic = list(result.get("off_topic") or [])
    method = {**MEANING, **{k: v for k, v in (result.get("method") or {}).items() if v}}
    leaks = sum(1 for group in groups if group.get("across_splits"))
    flagged = sum(1 for item in off_topic if item.get("flagged"))
    cards = "".join(
        f'<div class="card{" bad" if bad else ""}">{name}<b>{_t(value)}</b>{under}</div>'
        for name, value, under, bad in [
            ("images", _count(result.get("num_images")), "", False),
            ("likely label errors", len(labels), "", False),
            ("duplicate groups", len(groups), f"of which {leaks} across splits", leaks > 0),
            ("off-topic flagged", flagged, f"of {len(off_topic)} scored", False)])
    sections = (
        _section("label-issues", "Likely label errors", labels, method["label_issues"], limit,
                 lambda item: _label_card(item, data, thumbnail))
        + _section("duplicates", "Near-duplicates", groups, method["duplicates"], limit,
                   lambda group: _duplicate_card(group, data, thumbnail), wide=True)
        + _section("off-topic", "Off-topic photos", off_topic, method["off_topic"], limit,
                   lambda item: _off_topic_card(item, data, thumbnail)))
    where = _t(data) or "dataset"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>Data audit: {where}</title>
<style>{STYLE}</style></head><body>
<h1>Data audit: {where}</h1>
<p class="sub">{_subtitle(result)}</p>
<nav aria-label="sections"><a href="#label-issues">label errors</a> <a href="#duplicates">duplicates</a>
<a href="#off-topic">off-topic</a></nav>
<div class="cards">{cards}</div>
{_notes(list(result.get("notes") or []))}{_splits_table(result.get("split_counts") or {},
                                                         list(result.get("class_names") or []))}{sections}
</body></html>
"""
