"""Eval output: the terminal table, the Markdown and JSON reports, the plot, the baseline JSON.

Imports nothing from `evaluate` (which imports this module): the retrieval depth comes from
report["k"] and the gate's tolerance note from report["gate"]["tolerance"].
"""

from __future__ import annotations

import json
from pathlib import Path


def summary_table(report: dict, base: dict | None) -> str:
    bad = {f["metric"] for f in report["gate"]["failures"]}
    rows = ["| metric | now | baseline | delta | gate |", "| --- | ---: | ---: | ---: | --- |"]
    for name, now in report["metrics"].items():
        was = base["metrics"].get(name) if base else None
        delta = f"{now - was:+.4g}" if now is not None and was is not None else ""
        rows.append(f"| {name} | {_fmt(now, name)} | {_fmt(was, name)} | {delta} | {'FAIL' if name in bad else 'ok'} |")
    return "\n".join(rows)


def _fmt(v, name: str = "") -> str:
    return "n/a" if v is None else f"{v:.1f}" if name.startswith("latency/") else f"{v:.4f}"


def regression_lines(report: dict) -> list[str]:
    lines = []
    for r in report["gate"]["regressed"]:
        q = report["questions"][r["id"]]
        lines.append(f"- **{r['id']}** ({q['kind']}): {'; '.join(r['why'])}")
        if r["before"] == r["now"]:
            lines.append(f"  - retrieved the same top 5 as before: {_spans(r['now'])}")
        else:
            lines.append(f"  - before: {_spans(r['before'])}\n  - now:    {_spans(r['now'])}")
    return lines


def _spans(top: list) -> str:
    """`doc [s:e] [s:e]; other [s:e]` -- one name per run of passages from the same document."""
    parts = []
    for d, s, e in top:
        if parts and parts[-1][0] == d:
            parts[-1][1].append(f"[{s}:{e}]")
        else:
            parts.append((d, [f"[{s}:{e}]"]))
    return "; ".join(f"{d} {' '.join(spans)}" for d, spans in parts) or "(nothing)"


def markdown(report: dict, base: dict | None) -> str:
    s, gate = report["settings"], report["gate"]
    out = [f"# Eval report ({report['created']})", "",
           f"Mode `{s['mode']}`, model `{s['model']}`, chunk_size {s['chunk_size']}/{s['chunk_overlap']}, "
           f"top_k {s['top_k']}; {report['gold']['items']} gold questions; index built {report['index']['built_at']}"
           f" ({report['index']['chunks']} chunks).", "",
           f"**Gate: {'PASS' if gate['passed'] else 'FAIL'}** "
           f"({'against eval/baseline.json' if base else 'no baseline for this mode'}). {gate['tolerance']}", "",
           summary_table(report, base), ""]
    if report["stale"]:
        out += ["## Stale questions (not scored)", ""] + [f"- **{x['id']}**: {x['reason']}" for x in report["stale"]]
        out += ["", "Fix the quote in the gold file, or restore the text in the corpus.", ""]
    if gate["regressed"]:
        out += ["## Questions that got worse (top-5 passages before and now)", ""] + regression_lines(report) + [""]
    by_stage = report.get("failures_by_stage") or {}
    if by_stage:
        out += ["Failures by stage (diagnose at): " + ", ".join(f"{n} {s}" for s, n in by_stage.items()), ""]
    out += ["## Per question", "", "| id | kind | hit rank | evidence | answer | short | refused | cite prec | ms | diagnose at |",
            "| --- | --- | ---: | --- | --- | --- | --- | ---: | ---: | --- |"]
    for qid, r in report["questions"].items():
        cov = f"{r['covered'][0]}/{r['covered'][1]}" if r["covered"] else ""
        out.append(f"| {qid} | {r['kind']} | {r['hit_rank'] or ('miss' if r['answerable'] else '')} | {cov} | "
                   f"{'' if r['answer_ok'] is None else 'yes' if r['answer_ok'] else 'no'} | "
                   f"{'' if r.get('short_ok') is None else 'yes' if r['short_ok'] else 'no'} | "
                   f"{'yes' if r['refused'] else 'no'} | {_fmt(r['citation_precision'])} | {r['latency_ms']} | "
                   f"{r.get('diagnose_at', '')} |")
    return "\n".join(out) + "\n"


def plot(report: dict, base: dict | None, path: Path) -> None:
    """Recall@k curves and a strip of per-question outcomes (green ok, amber partial, red fail)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [3, 1.4]})
    ks = list(range(1, report.get("k", len(report["curves"].get("passage") or [])) + 1))
    for level, style in (("passage", "o-"), ("document", "s-")):
        if report["curves"].get(level) and report["curves"][level][0] is not None:
            ax1.plot(ks, report["curves"][level], style, label=f"{level} (now)")
    if base and base.get("curves", {}).get("passage"):
        ax1.plot(ks, base["curves"]["passage"], "k--", alpha=0.6, label="passage (baseline)")
    ax1.set(xlabel="k", ylabel="recall@k", ylim=(0, 1.02), xticks=ks,
            title=f"Retrieval recall@k, mode {report['settings']['mode']}")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="lower right")
    ids = list(report["questions"])
    grid = np.full((3, len(ids)), np.nan)
    for j, qid in enumerate(ids):
        r = report["questions"][qid]
        if r["answerable"]:
            grid[0, j] = 0 if r["hit_rank"] == 1 else 1 if r["hit_rank"] else 2
            grid[1, j] = 0 if r["answer_ok"] else 2
            cp = r["citation_precision"]
            grid[2, j] = np.nan if cp is None else 0 if cp == 1 else 1 if cp > 0 else 2
        else:
            grid[1, j] = 0 if r["refused"] else 2
    ax2.imshow(np.ma.masked_invalid(grid), aspect="auto", vmin=0, vmax=2,
               cmap=ListedColormap(["#4caf50", "#ffb300", "#e53935"]))
    for j, qid in enumerate(ids):
        if any(x["id"] == qid for x in report["gate"]["regressed"]):
            ax2.plot(j, -0.5, "kv", markersize=5, clip_on=False)
    ax2.set_yticks(range(3), ["passage hit", "answer/refusal", "citations"])
    ax2.set_xticks(range(len(ids)), [i.lstrip("q") for i in ids], rotation=90, fontsize=6)
    ax2.set_title("Per question (green: hit@1 / correct; amber: hit@2-10 / partial; red: miss / wrong; "
                  "\u25bc regressed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(report: dict, base: dict | None, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"eval-{report['settings']['mode']}"
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(markdown(report, base), encoding="utf-8")
    plot(report, base, paths[2])
    return paths


def dumps(obj, depth: int = 0) -> str:
    """JSON with one line per question record, so baseline diffs read question by question."""
    if depth >= 4 or not isinstance(obj, dict) or not obj:
        return json.dumps(obj, ensure_ascii=False)
    pad = " " * (depth + 1)
    body = ",\n".join(f"{pad}{json.dumps(k)}: {dumps(v, depth + 1)}" for k, v in obj.items())
    return "{\n" + body + "\n" + " " * depth + "}"
