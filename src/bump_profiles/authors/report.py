"""The benchmark's one table and one figure, written into the run (``report.md``, ``figure.png``,
``results.json``) and, when asked, into ``docs/benchmark-authors.md`` between generated-section markers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bump_profiles.authors.bench import GENERATORS, REFERENCES, Bench, profile_sets
from bump_profiles.authors.evaluate import METHODS, downstream_table, profile_table
from bump_profiles.data.atomic import atomic_write_json, atomic_write_text
from bump_profiles.errors import ConfigError

BEGIN, END = "<!-- authors-benchmark:begin (generated) -->", "<!-- authors-benchmark:end -->"
ROWS = ("none", "retrieval", *REFERENCES, *GENERATORS, "BUMP+retrieval")


def _ci(x: dict[str, float] | None) -> str:
    return "" if not x else f"{x['mean']:.3f} [{x['lo']:.3f}, {x['hi']:.3f}]"


def _stage_time(v: float | dict[str, Any]) -> str:
    """A stage's time; runs started before the load was recorded hold the seconds alone."""
    if not isinstance(v, dict):
        return f"{v}"
    load = v.get("load_1min_at_end")
    return f"{v['seconds']}" + ("" if load is None else f" ({load:.1f})")


def collect(b: Bench) -> dict[str, Any]:
    """Everything the table and figure show, from the stage outputs on disk."""
    intrinsic = {p.stem: json.loads(p.read_text()) for p in sorted(b.path("intrinsic").glob("*.json"))}
    for res in intrinsic.values():
        for g in res["groupings"].values():
            g.pop("per_author", None)
    timings = json.loads(b.path("timings.json").read_text()) if b.path("timings.json").exists() else {}
    training = {}
    for run in ("bump", "task"):
        summary = Path(b.train_config(run).output_dir) / "summary.json"
        if summary.exists():
            training[run] = json.loads(summary.read_text())
    return {"run": json.loads(b.path("run.json").read_text()), "split": json.loads(b.path("split.json").read_text())["authors"],
            "profiles": profile_table(b, profile_sets(b)), "intrinsic": intrinsic, "downstream": downstream_table(b),
            "training": training, "timings_s": timings, "rows": list(ROWS)}


def add_run_beside(r: dict[str, Any], other: dict[str, Any]) -> None:
    """Rows of another run's trained generators (e.g. a second training seed, same split) into ``r``,
    named ``BUMP (seed 1)`` (or by the run's ``label``); the two runs must have evaluated the same authors."""
    if other["split"] != r["split"]:
        raise ConfigError("a run shown beside this one must use the same author split (data.seed, data.path)")
    label = other["run"]["config"].get("label") or f"seed {other['run']['config']['train'].get('seed', 0)}"
    trained = (*(m for m in GENERATORS if GENERATORS[m]), "BUMP+retrieval")
    for j, res in other["intrinsic"].items():
        for g, gr in res["groupings"].items():
            mine = r["intrinsic"].get(j, {}).get("groupings", {}).get(g)
            for m in trained:
                if mine is not None and m in gr["rows"]:
                    mine["rows"][f"{m} ({label})"] = gr["rows"][m]
    for t, rows in other["downstream"].items():
        for m in trained:
            if t in r["downstream"] and m in rows:
                r["downstream"][t][f"{m} ({label})"] = rows[m]
    for m in trained:
        if m in other["profiles"]:
            r["profiles"][f"{m} ({label})"] = other["profiles"][m]
        if m in other["profiles"] or any(m in rows for rows in other["downstream"].values()):  # eval.only may leave some out
            r["rows"].append(f"{m} ({label})")
    r.setdefault("beside", []).append({"label": label, "out": other["run"]["config"]["out"], "training": other["training"]})


def table(r: dict[str, Any]) -> str:
    """One row per method: profile statistics, NDCG A / B per judge and grouping, downstream metrics."""
    cols = ["method", "tokens", "copy-4", "rep-3"]
    judge_cols = [(j, g) for j, res in r["intrinsic"].items() for g in res["groupings"]]
    cols += [f"NDCG A / B: {j}, {g}" for j, g in judge_cols]
    down_cols = [(t, m) for t, rows in r["downstream"].items() for m in next(iter(rows.values()))["metrics"]]
    cols += [f"{t}: {m}" for t, m in down_cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for method in r["rows"]:
        st = r["profiles"].get(method, {})
        cells = [method, f"{st['tokens_mean']:.0f}" if st else "", f"{st['copy_rate_4']:.2f}" if st else "",
                 f"{st['repetition_3']:.2f}" if st else ""]
        for j, g in judge_cols:
            row = r["intrinsic"][j]["groupings"][g]["rows"].get(method)
            cells.append(f"{_ci(row['a'])} / {_ci(row['b'])}" if row else "")
        for t, m in down_cols:
            cells.append(_ci(r["downstream"][t].get(method, {}).get("metrics", {}).get(m)))
        if any(cells[1:]):  # a method this run did not evaluate (none/retrieval without readers) gets no row
            lines.append("| " + " | ".join(cells) + " |")
    rand = [f"{r['intrinsic'][j]['groupings'][g]['random']['a']:.3f} / {r['intrinsic'][j]['groupings'][g]['random']['b']:.3f}"
            for j, g in judge_cols]
    lines.append("| random ranking | | | | " + " | ".join(rand) + " |" + " |" * len(down_cols))
    return "\n".join(lines)


def goal(r: dict[str, Any]) -> list[str]:
    """The goal the table is held against, checked on the paired intervals (lines of text)."""
    out = []
    for j, res in r["intrinsic"].items():
        for g, gr in res["groupings"].items():
            for other in ("zero-shot", "history@budget", "task-reward", "keywords"):
                d = gr["differences"].get(f"BUMP - {other}")
                if d:
                    out.append(f"- {j}, {g}: BUMP - {other}: A {_ci(d['a'])}, B {_ci(d['b'])} "
                               f"({'A settled' if d['a']['excludes_zero'] else 'A not settled'}, "
                               f"{'B settled' if d['b']['excludes_zero'] else 'B not settled'})")
    return out


def verdict(r: dict[str, Any]) -> list[str]:
    """The benchmark's goal, stated plainly: each condition met or not, on the paired intervals."""
    lines, met = [], True

    def check(name: str, ok: bool | None) -> None:
        nonlocal met
        lines.append(f"- {name}: {'not measured' if ok is None else 'met' if ok else 'NOT met'}")
        met = met and bool(ok)

    for judge in ("likelihood", "lexical"):
        g = r["intrinsic"].get(judge, {}).get("groupings", {})
        for grouping, res in g.items():
            for other in ("zero-shot", "history@budget"):
                d = res["differences"].get(f"BUMP - {other}")
                check(f"{judge} judge, {grouping}: BUMP above {other} in A and B (intervals above 0)",
                      None if d is None else d["a"]["lo"] > 0 and d["b"]["lo"] > 0)
        if not g:
            check(f"{judge} judge", None)
    cat = r["downstream"].get("category / llm", {})
    for other in ("zero-shot", "history@budget"):
        d = cat.get(other, {}).get("bump_minus", {}).get("accuracy")
        check(f"category (SmolLM2 reader): BUMP accuracy above {other} (interval above 0)", None if d is None else d["lo"] > 0)
    d = cat.get("task-reward", {}).get("bump_minus", {}).get("accuracy")
    check("category (SmolLM2 reader): BUMP not below task-reward (interval of the difference reaches 0 or above)",
          None if d is None else d["hi"] >= 0)
    return [f"**Goal {'met' if met else 'not met'}.**", "", *lines]


def figure(r: dict[str, Any], path: Path) -> None:
    """NDCG A (all at once) per judge, and category accuracy, per method, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = list(r["intrinsic"])
    cat = next((t for t in r["downstream"] if t.startswith("category")), None)
    fig, axes = plt.subplots(1, len(judges) + (cat is not None), figsize=(4.2 * (len(judges) + 1), 3.6), squeeze=False)
    for ax, j in zip(axes[0], judges, strict=False):
        grouping = "all at once" if "all at once" in r["intrinsic"][j]["groupings"] else next(iter(r["intrinsic"][j]["groupings"]))
        rows = r["intrinsic"][j]["groupings"][grouping]["rows"]
        names = [m for m in ROWS if m in rows]
        means = [rows[m]["a"]["mean"] for m in names]
        err = [[rows[m]["a"]["mean"] - rows[m]["a"]["lo"] for m in names], [rows[m]["a"]["hi"] - rows[m]["a"]["mean"] for m in names]]
        ax.barh(names, means, xerr=err, color="#4a7ab5")
        ax.axvline(r["intrinsic"][j]["groupings"][grouping]["random"]["a"], color="grey", ls="--", lw=1)
        ax.set_title(f"NDCG A, {j} judge, {grouping}", fontsize=9)
    if cat is not None:
        ax = axes[0][-1]
        rows = r["downstream"][cat]
        names = [m for m in METHODS if m in rows]
        acc = [rows[m]["metrics"]["accuracy"] for m in names]
        ax.barh(names, [a["mean"] for a in acc], xerr=[[a["mean"] - a["lo"] for a in acc], [a["hi"] - a["mean"] for a in acc]],
                color="#b5804a")
        ax.set_title(f"category accuracy ({cat})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(b: Bench, docs: str | Path | None = None, beside: list[str | Path] | None = None) -> Path:
    """results.json, figure.png and report.md in the run; the same section into ``docs`` when given.
    ``beside``: run directories (already reported) whose trained generators get rows in this table."""
    r = collect(b)
    others = [json.loads((Path(other) / "results.json").read_text()) for other in beside or []]  # read before ours is rewritten
    atomic_write_json(b.path("results.json"), r)
    for other in others:
        add_run_beside(r, other)
    figure(r, b.path("figure.png"))
    run, m = r["run"], r["run"]["machine"]
    runs = [("", r["training"])] + [(f" ({x['label']})", x["training"]) for x in r.get("beside", [])]
    training = "; ".join(f"{k}{label}: {v['global_step']} steps in {v['seconds'] / 60:.1f} min"
                         f"{' (stopped by the budget)' if v.get('stopped_by_budget') else ''}"
                         for label, t in runs for k, v in t.items())
    section = "\n".join([  # {figure}: the figure's file name beside the markdown file
        f"Run `{b.out}`: {len(r['split']['train'])} training / {len(r['split']['eval'])} evaluation authors, split seed "
        f"{run['config']['data']['seed']}, training seed {run['config']['train'].get('seed', 0)}, k={run['config']['data']['k']}. "
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, torch {m['torch']}, load average {m['load_average']} at the start.",
        f"Training: {training or 'not run'}.", "",
        "Cells: mean [95% bootstrap interval over authors]. tokens: policy tokenizer; copy-4: share of the profile's "
        "4-grams found in the author's history; rep-3: share of its 3-grams repeating an earlier one. Probe reader: "
        + ("fitted on the training authors' held-out articles, each method's own contexts (their profiles generated for it)."
           if run["config"]["eval"].get("probe_fit") == "training" else "cross-fitted over the evaluation authors."), "",
        table(r), "", "![NDCG and category accuracy per method]({figure})", "",
        *verdict(r), "",
        "Paired differences (BUMP minus each other set, per author; settled = the interval excludes 0):", "", *goal(r), "",
        "Wall time per stage in seconds (1-minute load average of the machine when the stage ended): "
        + ", ".join(f"{k} {_stage_time(v)}" for k, v in r["timings_s"].items()),
    ])
    atomic_write_text(b.path("report.md"), f"# News-authors benchmark: {b.out}\n\n{section.replace('{figure}', 'figure.png')}\n")
    if docs is not None:
        into_docs(Path(docs), (BEGIN, END), section, b.path("figure.png"), "figure-authors.png")
    return b.path("report.md")


def into_docs(docs: Path, markers: tuple[str, str], section: str, figure: Path, figure_name: str) -> None:
    """``section`` between the generated-section ``markers`` of a markdown file (appended when absent),
    with its figure copied beside the file as ``figure_name``."""
    begin, end = markers
    text = docs.read_text(encoding="utf-8") if docs.exists() else f"# News-authors benchmark\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    atomic_write_text(docs, f"{head}{begin}\n{section.replace('{figure}', figure_name)}\n{end}{rest.split(end, 1)[1]}")
    (docs.parent / figure_name).write_bytes(figure.read_bytes())


# --- the pooled report of a cross-fitted run (every author evaluated) ---------------------------------

POOLED_BEGIN, POOLED_END = "<!-- authors-folds:begin (generated) -->", "<!-- authors-folds:end -->"
POOLED_ROWS = ("history@budget", "history@central", "keywords@budget", "keywords", "full history", "zero-shot", "BUMP", "task-reward")
JUDGE_NAMES = {"training": "training judge (BUMP trained on it)", "likelihood": "likelihood", "lexical": "lexical"}


def hardest(groupings: dict[str, Any], horizon: str) -> str | None:
    """The grouping with the most negatives a judge has for a horizon: all authors, each fold, or groups."""
    for kind in ("all authors at once", "each fold at once", "groups of"):
        for label in groupings:
            if label.startswith(f"{horizon}, ") and kind in label:
                return label
    return None


def _diff(x: dict[str, Any]) -> str:
    mark = " ↑" if x["lo"] > 0 else " ↓" if x["hi"] < 0 else ""
    return f"{x['mean']:+.3f} [{x['lo']:+.3f}, {x['hi']:+.3f}]{mark}"


def pooled_columns(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(judge, grouping label) per column: held-out judges first, then the training judge; near, then far."""
    order = [j for j in ("likelihood", "lexical", "training") if j in r["intrinsic"]]
    return [(j, label) for j in order for h in ("near", "far")
            if (label := hardest(r["intrinsic"][j]["groupings"], h)) is not None]


def pooled_tables(r: dict[str, Any]) -> str:
    """The NDCG table (methods x judge/horizon) and the paired differences against history@budget."""
    cols = pooled_columns(r)
    heads = [f"{JUDGE_NAMES[j]}: {label}" for j, label in cols]
    rows = [m for m in POOLED_ROWS if any(m in r["intrinsic"][j]["groupings"][g]["rows"] for j, g in cols)]
    lines = ["| method | tokens | copy-4 | " + " | ".join(f"NDCG A / B, {h}" for h in heads) + " |", "|" + "---|" * (3 + len(cols))]
    for m in rows:
        st = r["profiles"].get(m, {})
        cells = [m, f"{st['tokens_mean']:.0f}" if st else "", f"{st['copy_rate_4']:.2f}" if st else ""]
        for j, g in cols:
            row = r["intrinsic"][j]["groupings"][g]["rows"].get(m)
            cells.append(f"{_ci(row['a'])} / {_ci(row['b'])}" if row else "")
        lines.append("| " + " | ".join(cells) + " |")
    rand = [f"{r['intrinsic'][j]['groupings'][g]['random']['a']:.3f} / {r['intrinsic'][j]['groupings'][g]['random']['b']:.3f}"
            for j, g in cols]
    lines.append("| random ranking | | | " + " | ".join(rand) + " |")
    lines += ["", "Each method minus history@budget, paired by author (A / B; ↑ or ↓: the 95% interval excludes 0):", "",
              "| method | " + " | ".join(heads) + " |", "|" + "---|" * (1 + len(cols))]
    for m in rows:
        if m == "history@budget":
            continue
        cells = [m]
        for j, g in cols:
            d = r["intrinsic"][j]["groupings"][g]["differences"].get(f"{m} - history@budget")
            cells.append(f"{_diff(d['a'])} / {_diff(d['b'])}" if d else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pooled_figure(r: dict[str, Any], path: Path) -> None:
    """Forest plot: each method minus history@budget (direction A, with its interval), per judge and horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = pooled_columns(r)
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 3.4), squeeze=False, sharey=True)
    names = [m for m in POOLED_ROWS if any(f"{m} - history@budget" in r["intrinsic"][j]["groupings"][g]["differences"]
                                           for j, g in cols)]
    for ax, (j, g) in zip(axes[0], cols, strict=True):
        diffs = r["intrinsic"][j]["groupings"][g]["differences"]
        for y, m in enumerate(names):
            d = diffs.get(f"{m} - history@budget")
            if d is None:
                continue
            a = d["a"]
            ax.errorbar(a["mean"], y, xerr=[[a["mean"] - a["lo"]], [a["hi"] - a["mean"]]], fmt="o",
                        color="#b53a3a" if a["hi"] < 0 else "#3a7ab5" if a["lo"] > 0 else "#555555")
        ax.axvline(0, color="grey", ls="--", lw=1)
        ax.set_yticks(range(len(names)), names)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.set_title(f"{j}: {g}", fontsize=8)
        ax.set_xlabel("NDCG A minus history@budget", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_pooled(config: Any, docs: str | Path | None = None) -> Path:
    """results.json, figure.png and report.md in ``out/pooled``; the same section into ``docs`` when given."""
    from bump_profiles.authors.folds import collect as collect_pooled

    r = collect_pooled(config)
    out = Path(config.out) / "pooled"
    atomic_write_json(out / "results.json", r)
    pooled_figure(r, out / "figure.png")
    m = r["machine"]
    training = "; ".join(
        f"{run}: " + ", ".join(f"{t['global_step']} steps / {t['seconds'] / 60:.0f} min" for t in runs)
        for run, runs in r["training"].items())
    d = config.data
    section = "\n".join([
        f"Run `{config.out}`: {r['authors']} authors in {r['folds']} folds (shuffle seed {d.seed}); a trained generator's "
        f"profiles of a fold come from its training on the other folds. Held out per evaluation author: {d.horizon or d.k} articles, near = the "
        f"earliest {d.k}, far = the rest (an author keeps at least {d.min_history} to read). Machine: {m['cpu']}, "
        f"{m['cpu_count']} cores, torch {m['torch']}.",
        f"Training per fold (budget {config.budget_minutes} min each): {training or 'not run'}.", "",
        "Cells: mean [95% bootstrap interval over all authors, 1 resample = authors drawn with replacement]. Each column "
        "uses the hardest ranking its judge ran: all authors at once (every author's profile against every author's "
        "held-out articles), else all authors of a fold at once, else groups of the training B.", "",
        pooled_tables(r), "", "![each method minus history@budget]({figure})",
    ])
    atomic_write_text(out / "report.md", f"# News-authors benchmark, every author: {config.out}\n\n"
                      f"{section.replace('{figure}', 'figure.png')}\n")
    if docs is not None:
        into_docs(Path(docs), (POOLED_BEGIN, POOLED_END), section, out / "figure.png", "figure-authors-folds.png")
    return out / "report.md"
