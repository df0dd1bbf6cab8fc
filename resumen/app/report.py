"""The evaluation report a person looks at: one self-contained HTML file (no script, no CDN, no image files).

``compare.py --dataset --report report.html`` writes it: the metrics of every model and baseline with their 95%
intervals, a chart per metric (inline SVG, the interval drawn on each bar), and example articles with each model's
summary side by side, the words copied from the article highlighted and numbers or names the article never
mentions marked. The metrics and their order are ``resumen.core.summary_metrics.METRICS``'.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from resumen.core.summary_metrics import marked_spans, normalise, shown_metrics

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #1d1d1f; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 13px; }
th, td { border: 1px solid #d0d0d7; padding: 4px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
.interval { color: #6b6b75; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
.chart h3 { font-size: 14px; margin: 0.5rem 0 0.2rem; }
.example { border-top: 1px solid #d0d0d7; margin-top: 1.5rem; padding-top: 0.5rem; }
.article { color: #3a3a40; background: #f6f6f8; padding: 0.5rem; white-space: pre-wrap; }
.summaries { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 0.75rem; }
.summary { border: 1px solid #d0d0d7; padding: 0.5rem; }
.summary h4 { margin: 0 0 0.3rem; font-size: 13px; }
mark.copied { background: #fff2a8; }
mark.unsupported { background: #ffd0d0; outline: 1px solid #d33; }
.legend mark { padding: 0 4px; }
"""
COLOURS = ["#3b6ea8", "#d9822b", "#4f9a5a", "#b04a6f", "#7a5fb0", "#8c6d46", "#3a9aa0", "#9a9a3a"]


def cell(values: dict[str, Any], key: str) -> str:
    """``mean [low, high]`` of one metric in one row, or empty."""
    if key not in values:
        return ""
    return f"{values[key]:.2f} <span class='interval'>[{values[f'{key}_low']:.2f}, {values[f'{key}_high']:.2f}]</span>"


def metrics_table(rows: Sequence[dict[str, Any]]) -> str:
    metrics = shown_metrics(rows)
    head = "".join(f"<th title='{html.escape(m.definition)}'>{html.escape(m.label)}</th>" for m in metrics)
    body = "".join(f"<tr><td>{html.escape(row['model'])}</td>" + "".join(f"<td>{cell(row, m.key)}</td>" for m in metrics) + "</tr>" for row in rows)
    return f"<table id='metrics'><thead><tr><th>model</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def chart(rows: Sequence[dict[str, Any]], key: str, label: str) -> str:
    """One metric: a horizontal bar per row at its mean, its 95% interval as a line with end ticks."""
    shown = [row for row in rows if key in row]
    if not shown:
        return ""
    top = max(max(row[f"{key}_high"] for row in shown), 1e-9) * 1.25  # room for the value after the interval
    width, bar, left = 340, 18, 130
    height = len(shown) * (bar + 8) + 24

    def x(value: float) -> float:
        return left + (width - left - 10) * max(value, 0.0) / top

    parts = []
    for i, row in enumerate(shown):
        y = 8 + i * (bar + 8)
        colour = COLOURS[i % len(COLOURS)]
        name = html.escape(row["model"] if len(row["model"]) <= 20 else "…" + row["model"][-19:])
        low, high = x(row[f"{key}_low"]), x(row[f"{key}_high"])
        parts.append(
            f"<text x='{left - 6}' y='{y + 13}' text-anchor='end' font-size='11'>{name}</text>"
            f"<rect class='bar' x='{left}' y='{y}' width='{x(row[key]) - left:.1f}' height='{bar}' fill='{colour}' opacity='0.8'>"
            f"<title>{html.escape(row['model'])}: {row[key]:.2f} [{row[f'{key}_low']:.2f}, {row[f'{key}_high']:.2f}]</title></rect>"
            f"<line class='interval' x1='{low:.1f}' x2='{high:.1f}' y1='{y + bar / 2}' y2='{y + bar / 2}' stroke='#111' stroke-width='1.5'/>"
            f"<line x1='{low:.1f}' x2='{low:.1f}' y1='{y + 4}' y2='{y + bar - 4}' stroke='#111'/>"
            f"<line x1='{high:.1f}' x2='{high:.1f}' y1='{y + 4}' y2='{y + bar - 4}' stroke='#111'/>"
            f"<text x='{min(high + 4, width - 30):.1f}' y='{y + 13}' font-size='10'>{row[key]:.1f}</text>"
        )
    svg = f"<svg role='img' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>{''.join(parts)}</svg>"
    return f"<div class='chart' data-metric='{key}'><h3>{html.escape(label)}</h3>{svg}</div>"


def highlighted(summary: str, article: str) -> str:
    """The summary as HTML: copied words in ``mark.copied``, unsupported numbers and names in ``mark.unsupported``."""
    text = normalise(summary)
    marks = [""] * len(text)
    for start, end, kind in marked_spans(summary, article):  # unsupported after copied: it wins where both apply
        for i in range(start, end):
            marks[i] = kind if kind == "unsupported" or not marks[i] else marks[i]
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and marks[j] == marks[i]:
            j += 1
        piece = html.escape(text[i:j])
        out.append(f"<mark class='{marks[i]}'>{piece}</mark>" if marks[i] else piece)
        i = j
    return "".join(out)


def examples_section(summaries: dict[str, list[str]], articles: Sequence[str], references: Sequence[str], count: int) -> str:
    parts = []
    for i in range(min(count, len(articles))):
        columns = [("reference", references[i])] + [(name, texts[i]) for name, texts in summaries.items()]
        boxes = "".join(
            f"<div class='summary' data-model='{html.escape(name)}'><h4>{html.escape(name)}</h4>{highlighted(text, articles[i])}</div>"
            for name, text in columns
        )
        article = f"<div class='article'>{html.escape(articles[i])}</div>"
        parts.append(f"<section class='example'><h3>Article {i + 1}</h3>{article}<div class='summaries'>{boxes}</div></section>")
    return "".join(parts)


def build_report(
    rows: Sequence[dict[str, Any]], summaries: dict[str, list[str]], articles: Sequence[str], references: Sequence[str], examples: int = 10
) -> str:
    """The whole report as one HTML document (``rows`` are compare.py's dataset rows, the references' row included)."""
    scored = [row for row in rows if "error" not in row]
    count = scored[0].get("examples", len(articles)) if scored else 0
    better = {True: "higher is better", False: "lower is better", None: "describes, does not judge"}
    charts = "".join(chart(scored, m.key, f"{m.label} ({better[m.higher_is_better]})") for m in shown_metrics(scored))
    failed = "".join(f"<li>{html.escape(row['model'])}: {html.escape(str(row['error']))}</li>" for row in rows if "error" in row)
    return (
        "<!doctype html><html lang='es'><head><meta charset='utf-8'><title>resumen evaluation report</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Evaluation report</h1><p>{count} test articles. Each value: mean [95% bootstrap interval]. "
        "lead-K is the article's first K sentences; the oracle chooses sentences knowing the reference (the ceiling of "
        "extraction); (references) is the data's own summaries. Definitions: docs/evaluation.md.</p>"
        + (f"<p>Failed:</p><ul>{failed}</ul>" if failed else "")
        + f"<h2>Metrics</h2>{metrics_table(scored)}<h2>Charts</h2><div class='charts'>{charts}</div>"
        "<h2>Examples</h2><p class='legend'><mark class='copied'>copied from the article</mark> "
        "<mark class='unsupported'>a number or name the article never mentions</mark></p>"
        + examples_section(summaries, articles, references, examples)
        + "</body></html>\n"
    )
