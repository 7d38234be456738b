"""Run reports: ``report.md`` and a self-contained ``report.html`` with plots, from a run directory.

The report shows only what the run wrote; a section whose file is absent is left out. Files read:

- ``train/metrics.jsonl``: one line per logged step (``step``, ``reward``, ``ndcg_a``, ``ndcg_b``,
  ``profile_tokens``, ...), written by the trainer;
- ``intrinsic.json``: ``{"rows": [{"name", "ndcg_a", "ndcg_b", ...}], "random": {...}, "judge": ...}``;
- ``downstream.json``: ``{"task", "rows": [{"method", <metrics>..., "users"}]}``;
- ``profiles_before.jsonl`` / ``profiles_after.jsonl``: ``{"user_id", "profile"}`` lines;
- ``run.json``: the config, seeds and package versions of the run.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from bump_profiles.data.atomic import atomic_write_bytes, atomic_write_text
from bump_profiles.data.jsonl import iter_jsonl
from bump_profiles.errors import DataError

CURVES = [("reward", "reward"), ("ndcg_a", "NDCG A (profile -> items)"), ("ndcg_b", "NDCG B (items -> profile)")]
# The reward's headroom per step (docs/alignment.md): GRPO learns from differences within a user's group.
HEADROOM = [("at_max_share", "rollouts at the maximum"), ("group_spread", "within-user spread of the rewards"),
            ("ndcg_a", "NDCG A (batch, + bank if on)"), ("ndcg_a_batch", "NDCG A (batch only)")]


def read_run_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file the run appends to. Only a last line without its newline (cut by a
    crash mid-write) is skipped; any other malformed line is a DataError naming it."""
    if not path.exists():
        return []
    data = path.read_bytes()
    last = data.count(b"\n") + 1
    cut = f"line {last}" if data and not data.endswith(b"\n") else None
    rows: list[dict] = []
    try:
        rows.extend(obj for _, obj in iter_jsonl(path))
    except DataError as exc:
        if cut is None or exc.record != cut:
            raise
    return rows


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one metric; rows without it are skipped."""
    pts = [(r.get("step", i), r[key]) for i, r in enumerate(rows) if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (one resolution for every figure the project writes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def headroom_png(runs: dict[str, list[dict]]) -> bytes | None:
    """One panel per headroom metric, one line per run (``{label: metrics rows}``); None for runs that
    logged no headroom (older runs: no ``at_max_share``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(series(rows, "at_max_share")[0] for rows in runs.values()):
        return None
    keys = [(k, label) for k, label in HEADROOM if any(series(rows, k)[0] for rows in runs.values())
            and not (k == "ndcg_a_batch" and all(series(r, k) == series(r, "ndcg_a") for r in runs.values()))]  # no bank: the same
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys, strict=True):
        for name, rows in runs.items():
            xs, ys = series(rows, key)
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=name)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    png = figure_png(fig)
    plt.close(fig)
    return png


def make_plots(run_dir: Path) -> dict[str, bytes]:
    """PNG bytes by name: training curves, profile length, before/after intrinsic scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, bytes] = {}
    metrics = read_run_rows(run_dir / "train" / "metrics.jsonl")
    if metrics:
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        for key, label in CURVES:
            xs, ys = series(metrics, key)
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=label)
        ax.set_xlabel("training step")
        ax.set_ylabel("score")
        ax.set_title("BUMP reward and its two directions")
        ax.grid(alpha=0.3)
        ax.legend()
        plots["reward"] = figure_png(fig)
        plt.close(fig)
        xs, ys = series(metrics, "profile_tokens")
        if xs:
            fig, ax = plt.subplots(figsize=(6.5, 3.0))
            ax.plot(xs, ys, marker="o", ms=3, color="tab:purple")
            ax.set_xlabel("training step")
            ax.set_ylabel("tokens")
            ax.set_title("Mean profile length")
            ax.grid(alpha=0.3)
            plots["length"] = figure_png(fig)
            plt.close(fig)
        headroom = headroom_png({"this run": metrics})
        if headroom:
            plots["headroom"] = headroom
    intrinsic = _read_json(run_dir / "intrinsic.json")
    if intrinsic and intrinsic.get("rows"):
        rows = intrinsic["rows"]
        names = [r["name"] for r in rows]
        fig, ax = plt.subplots(figsize=(7.0, 0.5 * len(rows) + 1.8))
        y = range(len(rows))
        ax.barh([i - 0.2 for i in y], [r["ndcg_a"] for r in rows], height=0.4, label="NDCG A")
        ax.barh([i + 0.2 for i in y], [r["ndcg_b"] for r in rows], height=0.4, label="NDCG B")
        rand = intrinsic.get("random") or {}
        if "ndcg_a" in rand:
            ax.axvline(rand["ndcg_a"], color="gray", ls="--", lw=1, label="random")
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"held-out NDCG (judge: {intrinsic.get('judge', '?')})")
        ax.set_title("Intrinsic scores on held-out users")
        ax.legend(loc="lower right")
        plots["intrinsic"] = figure_png(fig)
        plt.close(fig)
    return plots


def _md_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _columns(rows: list[dict], first: str) -> list[str]:
    cols = [first]
    for r in rows:
        cols += [k for k in r if k not in cols and isinstance(r[k], (int, float, str)) and k != first]
    return cols


def _examples(run_dir: Path, n: int = 3) -> list[tuple[str, str, str]]:
    before = {r["user_id"]: r["profile"] for r in read_run_rows(run_dir / "profiles_before.jsonl")}
    after = {r["user_id"]: r["profile"] for r in read_run_rows(run_dir / "profiles_after.jsonl")}
    return [(uid, before[uid], after[uid]) for uid in list(before)[:] if uid in after][:n]


def _reading(table: dict) -> list[str]:
    """The one sentence that says what a newcomer should read from a table, when the table carries one."""
    return [f"**How to read it:** {table['read']}", ""] if table.get("read") else []


def build_markdown(run_dir: Path, plot_names: list[str]) -> str:
    """The report as markdown, referring to the plots saved beside it in ``plots/``."""
    run = _read_json(run_dir / "run.json") or {}
    parts = [f"# BUMP run report: `{run_dir.name}`", ""]
    if run:
        parts += [f"Created {run.get('created', '?')} on {run.get('machine', '?')}; seed {run.get('seed', '?')}.", ""]
    if "reward" in plot_names:
        parts += ["## Training", "", "![reward](plots/reward.png)", ""]
    if "length" in plot_names:
        parts += ["![profile length](plots/length.png)", ""]
    if "headroom" in plot_names:
        parts += ["The reward's headroom: a group of equal rewards teaches GRPO nothing (docs/alignment.md).", "",
                  "![headroom](plots/headroom.png)", ""]
    intrinsic = _read_json(run_dir / "intrinsic.json")
    if intrinsic and intrinsic.get("rows"):
        parts += ["## Intrinsic scores (held-out users, label-free)", "",
                  f"Judge: {intrinsic.get('judge', '?')}. " + intrinsic.get("note", ""), "",
                  *_reading(intrinsic),
                  _md_table(intrinsic["rows"] + ([{"name": "random ranking", **intrinsic["random"]}] if intrinsic.get("random") else []),
                            _columns(intrinsic["rows"], "name")), ""]
        if "intrinsic" in plot_names:
            parts += ["![intrinsic](plots/intrinsic.png)", ""]
    downstream = _read_json(run_dir / "downstream.json")
    if downstream and downstream.get("rows"):
        parts += [f"## Downstream: {downstream.get('task', '?')}", "", downstream.get("note", ""), "",
                  *_reading(downstream),
                  _md_table(downstream["rows"], _columns(downstream["rows"], "method")), ""]
    examples = _examples(run_dir)
    if examples:
        parts += ["## Example profiles, before and after training", ""]
        for uid, before, after in examples:
            parts += [f"**{uid}**", "", f"- before: {before.strip() or '(empty)'}", f"- after: {after.strip() or '(empty)'}", ""]
    if run:
        parts += ["## Reproduce", "", "```", run.get("command", ""), "```", "",
                  "Packages: " + ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items()), ""]
    return "\n".join(parts)


def markdown_to_html(md: str, images: dict[str, bytes], title: str) -> str:
    """The report markdown as one self-contained HTML page (plots inlined as base64 PNG)."""
    import markdown

    body = markdown.markdown(md, extensions=["tables", "fenced_code"])
    for name, png in images.items():
        body = body.replace(f'src="plots/{name}.png"', f'src="data:image/png;base64,{base64.b64encode(png).decode()}"')
    style = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}pre{background:#f5f5f5;padding:.8em;overflow:auto}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{body}</body></html>\n")


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` (+ ``plots/*.png``) and a self-contained ``report.html`` into ``run_dir``."""
    run_dir = Path(run_dir)
    plots = make_plots(run_dir)
    (run_dir / "plots").mkdir(exist_ok=True)
    for name, png in plots.items():
        atomic_write_bytes(run_dir / "plots" / f"{name}.png", png)
    md = build_markdown(run_dir, list(plots))
    atomic_write_text(run_dir / "report.md", md)
    atomic_write_text(run_dir / "report.html", markdown_to_html(md, plots, f"BUMP run {run_dir.name}"))
    return run_dir / "report.md", run_dir / "report.html"
