"""The benchmark's stages, each resumable: skipped when its output exists, timed into ``timings.json``.

``split`` -> ``train-bump``, ``train-task`` -> ``profiles`` -> ``references`` -> ``judges`` ->
``downstream`` -> ``report``. Re-running the command resumes at the first stage without output; a
training run with a checkpoint but no ``final/`` resumes from its checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bump_profiles.authors.bench import GENERATORS, REFERENCES, TRAIN_PART, Bench, machine
from bump_profiles.authors.config import AuthorsBenchConfig
from bump_profiles.authors.data import (
    category_questions,
    check_same_split,
    headline_questions,
    write_training_file,
)
from bump_profiles.data.atomic import atomic_write_json, atomic_write_text
from bump_profiles.errors import ConfigError

log = logging.getLogger(__name__)

KEYWORDS_TO_CUT = 200  # keywords@budget: ranked keywords to cut from, more than any budget holds

STAGES = ("split", "train-bump", "train-task", "profiles", "references", "judges", "downstream", "report")


# --- split ------------------------------------------------------------------------------------------


def stage_split(b: Bench) -> None:
    """The split on disk: author ids, the training file ``train`` reads, the questions, the IDF corpus."""
    s = b.split
    saved = b.path("split.json")
    if saved.exists() and json.loads(saved.read_text())["authors"] != s.ids():
        raise ConfigError(f"{saved} holds another split than this config makes: use another out directory")
    write_training_file(s.train, s.labels, b.path("train_LaMP_2_news_questions.json"), b.path("train_outputs.json"))
    near = s.horizons()["near"]  # downstream questions: the near horizon, as before horizons existed
    atomic_write_json(b.path("questions", "category.json"), category_questions(near, s.labels))
    atomic_write_json(b.path("questions", "headline.json"), headline_questions(near))
    # IDF corpus of the lexical judge: every article a generator may read or train on (training
    # authors' articles, evaluation authors' histories), fixed once; no evaluation held-out article.
    corpus = [" ".join(it.fields.values()) for x in s.train for it in [*x.history, *x.heldout]]
    corpus += [" ".join(it.fields.values()) for x in s.eval for it in x.history]
    atomic_write_text(b.path("lexical_corpus.txt"), "\n".join(" ".join(t.split()) for t in corpus) + "\n")
    atomic_write_json(saved, {"authors": s.ids(), "labels": list(s.labels), "config": asdict(b.config.data),
                              "articles": {"train_history": sum(len(x.history) for x in s.train),
                                           "eval_history": sum(len(x.history) for x in s.eval),
                                           "heldout_per_author": b.config.data.held_out, "near": b.config.data.k}})


# --- training ---------------------------------------------------------------------------------------


def budget_callback(minutes: float | None, folder: str | Path | None = None):
    """Stops training (with a checkpoint, then ``final/``) once ``minutes`` of wall time have passed.

    The time spent is written to ``folder/budget.json`` after every step and read back when training
    begins, so a resumed run gets what is left of the budget, not a fresh one (a fresh run starts in
    an emptied folder)."""
    from transformers import TrainerCallback

    saved = Path(folder) / "budget.json" if folder is not None else None

    class TimeBudget(TrainerCallback):
        start = time.perf_counter()
        before = 0.0  # seconds spent by earlier processes of this run
        stopped = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()
            if saved is not None and saved.is_file():
                self.before = float(json.loads(saved.read_text())["seconds"])

        def on_step_end(self, args, state, control, **kwargs):
            spent = self.before + time.perf_counter() - self.start
            if saved is not None:
                atomic_write_json(saved, {"seconds": round(spent, 3), "minutes": minutes})
            if minutes is not None and spent > minutes * 60:
                self.stopped = control.should_save = control.should_training_stop = True

    return TimeBudget()


def stage_train(b: Bench, run: str, **inject: Any) -> None:
    """GRPO on the training authors (``inject``: a judge/reader, for tests); resumes from a checkpoint."""
    from bump_profiles.train import train
    from bump_profiles.train.data import prepare_data

    cfg = b.train_config(run)
    check_same_split(b.split.train, prepare_data(cfg).train)
    folder = Path(cfg.output_dir)
    resume = folder.is_dir() and any(folder.glob("checkpoint-*"))
    budget = budget_callback(b.config.budget_minutes, folder)
    result = train(cfg, resume=resume, overwrite=not resume and folder.exists(), callbacks=[budget], **inject)
    atomic_write_json(folder / "summary.json", {**result.__dict__, "resumed": resume, "stopped_by_budget": budget.stopped,
                                                "budget_minutes": b.config.budget_minutes})


# --- profiles and references ------------------------------------------------------------------------


def generator(b: Bench, name: str):
    """The untrained policy, or a trained run's ``final/`` (a LoRA adapter merged, or full weights)."""
    from bump_profiles.engines.models import load_causal_lm

    base = b.train_config("bump").policy.model
    run = GENERATORS[name]
    if run is None:
        return load_causal_lm(base)
    final = Path(b.train_config(run).output_dir) / "final"
    if not final.is_dir():
        raise ConfigError(f"{final} is missing: run the train-{run} stage first")
    if (final / "adapter_config.json").exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(load_causal_lm(base), str(final)).merge_and_unload()
    return load_causal_lm(str(final))


def stage_profiles(b: Bench, name: str, part: str = "eval") -> None:
    """Greedy profiles of the evaluation (or training) authors from their histories (resumable per author)."""
    from bump_profiles.engines.backends import TransformersBackend
    from bump_profiles.engines.models import load_tokenizer
    from bump_profiles.profiles.generate import generate_profiles

    cfg = b.train_config("bump")
    tokenizer = load_tokenizer(cfg.policy.model)
    prompt = cfg.prompt  # a ProfilePrompt
    if cfg.prompt.mode == "chunked":  # the untrained model's notes (as in training), kept for every generator
        from bump_profiles.engines.models import load_causal_lm
        from bump_profiles.profiles.chunked import chunked_prompt, load_notes, write_notes

        prompt, notes = chunked_prompt(cfg.prompt), b.path("notes", f"{part}.jsonl")
        histories = {s.user.id: s.history for s in b.splits(part)}
        load_notes(prompt, notes)
        if prompt.missing(histories):  # the base model is loaded only to write notes not kept yet
            base = TransformersBackend(load_causal_lm(cfg.policy.model), tokenizer, batch_size=b.config.eval.batch_size)
            write_notes(base, prompt, histories, max_new_tokens=cfg.grpo.max_completion_length, path=notes)
    backend = TransformersBackend(generator(b, name), tokenizer, batch_size=b.config.eval.batch_size,
                                  name=f"{name}:{cfg.policy.model}")
    generate_profiles(b.splits(part), backend, prompt, b.profile_file(name, part),
                      max_new_tokens=cfg.grpo.max_completion_length, progress=False)


def profiles_done(b: Bench, name: str, part: str = "eval") -> bool:
    from bump_profiles.profiles.generate import read_done

    return {s.user.id for s in b.splits(part)} <= read_done(b.profile_file(name, part))


def stage_references(b: Bench, part: str = "eval") -> None:
    """history@budget (cut to each profile's token count of ``eval.budget_from``, BUMP by default), keywords,
    full history (cut to a budget), and at the same budgets history@central (the most typical items) and
    keywords@budget: the label-free texts a generated profile of that length must beat.

    A training author's keywords are counted against the other training authors, as an evaluation
    author's are against the training authors."""
    from bump_profiles.authors.keywords import cut_keywords, keyword_profiles
    from bump_profiles.data.profiles import load_profiles
    from bump_profiles.data.render import render_history
    from bump_profiles.profiles.baselines import budget_history, central_history

    count = b.count_tokens()
    splits, train = b.splits(part), b.split.train
    bump = load_profiles(b.profile_file(b.config.eval.budget_from, part))
    budgets = {u: count(p) for u, p in bump.items()}
    cap = b.config.eval.full_history_tokens
    n = b.config.eval.keyword_words
    depth = max(n, KEYWORDS_TO_CUT)  # one ranking serves the n-word keywords and keywords@budget
    ranked = (keyword_profiles(splits, train, depth) if part == "eval" else
              {u: p for s in splits for u, p in keyword_profiles([s], [x for x in train if x is not s], depth).items()})
    refs = {"history@budget": budget_history(splits, budgets, count),
            "keywords": {u: ", ".join(p.split(", ")[:n]) for u, p in ranked.items()}}
    if part == "eval":
        refs["full history"] = {s.user.id: render_history(s.history, max_tokens=cap, count_tokens=count, bullet="") for s in splits}
        refs["history@central"] = central_history(splits, budgets, count)
        refs["keywords@budget"] = cut_keywords(ranked, budgets, count)
    for name, profiles in refs.items():
        lines = [json.dumps({"user_id": u, "profile": p, "model": f"reference:{name}"}, ensure_ascii=False) for u, p in profiles.items()]
        atomic_write_text(b.profile_file(name, part), "\n".join(lines) + "\n")


def run(config: AuthorsBenchConfig, stages: list[str] | None = None, *, docs: str | Path | None = None,
        beside: list[str | Path] | None = None, inject: dict[str, dict[str, Any]] | None = None) -> Bench:
    """Run (or resume) ``stages`` (default: all, in order). ``beside``: finished runs (other training
    seeds) shown in this run's table; ``inject``: per-stage test doubles."""
    from bump_profiles.authors import evaluate, report

    wanted = stages or list(STAGES)
    unknown = sorted(set(wanted) - set(STAGES))
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(unknown)} (known: {', '.join(STAGES)})")
    for key, names in [("eval.only", config.eval.only or ()), *((f"eval.judge_sets.{j}", v) for j, v in config.eval.judge_sets.items())]:
        unknown = sorted(set(names) - {*GENERATORS, *REFERENCES})
        if unknown:
            raise ConfigError(f"{key}: unknown profile set(s) {', '.join(unknown)} (known: {', '.join([*GENERATORS, *REFERENCES])})")
    b = Bench.open(config)
    b.out.mkdir(parents=True, exist_ok=True)
    inject = inject or {}
    atomic_write_json(b.path("run.json"), {"config": asdict(config), "machine": machine(), "stages": wanted})
    for stage in STAGES:
        if stage not in wanted:
            continue
        if stage == "split" and not b.skip(stage, b.path("split.json").exists()):
            with b.timing(stage):
                stage_split(b)
        elif stage.startswith("train-"):
            name = stage.removeprefix("train-")
            if not b.skip(stage, (Path(b.train_config(name).output_dir) / "final").is_dir()):
                with b.timing(stage):
                    stage_train(b, name, **inject.get(stage, {}))
        elif stage == "profiles":
            for part in b.parts():
                for name in filter(b.evaluates, GENERATORS):
                    label = f"profiles {name}" + ("" if part == "eval" else " (training authors, for the probe)")
                    if not b.skip(label, profiles_done(b, name, part)):
                        with b.timing(label):
                            stage_profiles(b, name, part)
        elif stage == "references" and any(map(b.evaluates, REFERENCES)):
            for part in b.parts():
                names = REFERENCES if part == "eval" else [n for n in REFERENCES if n in TRAIN_PART]
                label = stage + ("" if part == "eval" else " (training authors)")
                if not b.skip(label, all(b.profile_file(n, part).exists() for n in names)):
                    with b.timing(label):
                        stage_references(b, part)
        elif stage == "judges":
            for judge in config.eval.judges:
                path = b.path("intrinsic", f"{judge}.json")
                if not b.skip(f"judge {judge}", path.exists()):
                    with b.timing(f"judge {judge}"):
                        evaluate.stage_judge(b, judge, path)
        elif stage == "downstream":
            evaluate.stage_downstream(b)
        elif stage == "report":
            with b.timing(stage):
                report.write(b, docs, beside)
    return b
