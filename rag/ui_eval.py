"""The Eval panel: the newest `rag eval` report (eval/reports/eval-<mode>.json, .md, .png) as an
HTML metrics table with its gate, its plot (scrolls sideways rather than shrink on a narrow
screen) and its Markdown report rendered as HTML."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from .ui_corpus import markdown_html
from .ui_render import esc

def latest_report(root: Path) -> dict | None:
    """The newest report (eval-<mode>.json or report.json) under root, with the .md and .png of the same
    name beside it (else any beside it, else the newest ones)."""
    root = Path(root)
    if not root.is_dir():
        return None

    def newest(pattern):
        files = [p for p in root.rglob(pattern) if p.is_file() and not p.name.startswith(".")]
        return max(files, key=lambda p: p.stat().st_mtime, default=None)

    reports = [p for p in (newest("report.json"), newest("eval-*.json")) if p]
    found = {"json": max(reports, key=lambda p: p.stat().st_mtime, default=None)}
    where = found["json"].parent if found["json"] else None
    for kind in ("md", "png"):
        twin = found["json"].with_suffix(f".{kind}") if found["json"] else None
        beside = sorted(where.glob(f"*.{kind}"), key=lambda p: p.stat().st_mtime) if where else []
        found[kind] = twin if twin and twin.is_file() else beside[-1] if beside else newest(f"*.{kind}")
    return found if any(found.values()) else None


def _metric_rows(data, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    rows = []
    if isinstance(data, dict) and depth < 3:
        for k, v in data.items():
            rows += _metric_rows(v, f"{prefix}{k}" if not prefix else f"{prefix}.{k}", depth + 1)
    elif isinstance(data, bool) or data is None:
        pass
    elif isinstance(data, (int, float)):
        rows.append((prefix, f"{data:.4f}" if isinstance(data, float) else str(data)))
    elif isinstance(data, str) and depth == 1 and len(data) < 80:
        rows.append((prefix, data))
    return rows


def render_eval(found: dict | None, max_rows: int = 60) -> str:
    """The latest eval report as a metrics table and plot, or how to make one."""
    if not found:
        return ('<div class="panel-empty">No eval report yet \u2014 run <code>rag eval</code>, '
                "then open this tab again.</div>")
    parts = []
    if found.get("json"):
        try:
            data = json.loads(found["json"].read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            data, parts = None, [f'<div class="panel-empty">\u26a0 cannot read {esc(found["json"])}: {esc(e)}</div>']
        if data is not None:
            metrics = data.get("metrics", data) if isinstance(data, dict) else {}
            gate = data.get("gate") if isinstance(data, dict) else None
            if isinstance(gate, dict) and "passed" in gate:
                ok = bool(gate["passed"])
                parts.append(f'<div class="{"ok-text" if ok else "error-text"}"><b>Gate: {"PASS" if ok else "FAIL"}'
                             "</b></div>")
            rows = _metric_rows(metrics)[:max_rows]
            body = "".join(f'<tr><td class="mono">{esc(k)}</td><td class="num">{esc(v)}</td></tr>' for k, v in rows)
            parts.append(f'<table class="table metrics"><thead><tr><th>Metric</th><th class="num">Value</th></tr>'
                         f"</thead><tbody>{body}</tbody></table>")
    if found.get("png"):
        data = base64.b64encode(found["png"].read_bytes()).decode()
        parts.append(f'<div class="plot-box"><img class="plot" alt="eval plot" src="data:image/png;base64,{data}">'
                     "</div>")
    if found.get("md"):
        text = markdown_html(found["md"].read_text(encoding="utf-8", errors="replace"))
        parts.append(f'<details{"" if found.get("json") else " open"}><summary>{esc(found["md"].name)}</summary>'
                     f'<div class="report-md report-html report-box" tabindex="0">{text}</div></details>')
    shown = next(p for p in (found.get("json"), found.get("md"), found.get("png")) if p)
    head = f'<div class="panel-title">Latest eval report \u00b7 {esc(shown.parent.name)}/{esc(shown.name)}</div>'
    return f'<div class="eval">{head}{"".join(parts)}</div>'
