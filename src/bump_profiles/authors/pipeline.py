"""The benchmark's stages, each resumable: skipped when its output exists, timed into ``timings.json``.

``split`` -> ``train-bump``, ``train-task`` -> ``profiles`` -> ``references`` -> ``judges`` ->
``downstream`` -> ``report``. Re-running the command resumes at the first stage without output; a
training run with a checkpoint but no ``final/`` resumes from its checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bump_profiles.authors.config import AuthorsBenchConfig
from bump_profiles.authors.data import (
    AuthorSplit,
    category_questions,
    check_same_split,
    headline_questions,
    load_authors,
    split_authors,
    write_training_file,
)
from bump_profiles.errors import ConfigError
from bump_profiles.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

STAGES = ("split", "train-bump", "train-task", "profiles", "references", "judges", "downstream", "report")
GENERATORS = {"zero-shot": None, "BUMP": "bump", "task-reward": "task"}  # profile set -> training run
REFERENCES = ("history@budget", "keywords", "full history")


@dataclass
class Bench:
    """One benchmark run: its config, directory, split and the stage timings."""

    config: AuthorsBenchConfig
    split: AuthorSplit
    out: Path

    @classmethod
    def open(cls, config: AuthorsBenchConfig) -> Bench:
        """Load and split the authors (a second of work, redone every time: the split is a function of the config)."""
        c = config.data
        split = split_authors(load_authors(c.path), eval_authors=c.eval_authors, k=c.k, seed=c.seed,
                              cap=c.history_cap, max_authors=c.max_authors)
        return cls(config, split, Path(config.out))

    def evaluates(self, method: str) -> bool:
        """Whether a profile set or downstream method is evaluated (``eval.only``; ``none``/``retrieval`` only when all are)."""
        only = self.config.eval.only
        return only is None or method.removesuffix("+retrieval") in only

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def profile_file(self, name: str) -> Path:
        return self.path("profiles", name.replace(" ", "-").replace("@", "-at-") + ".jsonl")

    def skip(self, name: str, done: bool) -> bool:
        """Whether a stage's output exists (logged): a skipped stage keeps its earlier time."""
        if done:
            log.info("stage %s: output exists, skipped", name)
        return done

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Record a stage's wall time in ``timings.json`` when it finishes."""
        path = self.path("timings.json")
        t0 = time.perf_counter()
        log.info("stage %s: running", name)
        yield
        timings = json.loads(path.read_text()) if path.exists() else {}
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # the machine is shared: say how busy
        timings[name] = {"seconds": round(time.perf_counter() - t0, 1), "load_1min_at_end": load}
        atomic_write_json(path, timings)

    def train_config(self, run: str):
        return self.config.train_config(run, self.path("train_LaMP_2_news_questions.json"), self.path("train_outputs.json"))

    def count_tokens(self) -> Callable[[str], int]:
        from bump_profiles.models import load_tokenizer

        tok = load_tokenizer(self.train_config("bump").policy.model)
        return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the load of a shared machine included)."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None, "platform": platform.platform()}


# --- split ------------------------------------------------------------------------------------------


def stage_split(b: Bench) -> None:
    """The split on disk: author ids, the training file ``train`` reads, the questions, the IDF corpus."""
    s = b.split
    saved = b.path("split.json")
    if saved.exists() and json.loads(saved.read_text())["authors"] != s.ids():
        raise ConfigError(f"{saved} holds another split than this config makes: use another out directory")
    write_training_file(s.train, s.labels, b.path("train_LaMP_2_news_questions.json"), b.path("train_outputs.json"))
    atomic_write_json(b.path("questions", "category.json"), category_questions(s.eval, s.labels))
    atomic_write_json(b.path("questions", "headline.json"), headline_questions(s.eval))
    # IDF corpus of the lexical judge: every article a generator may read or train on (training
    # authors' articles, evaluation authors' histories), fixed once; no evaluation held-out article.
    corpus = [" ".join(it.fields.values()) for x in s.train for it in [*x.history, *x.heldout]]
    corpus += [" ".join(it.fields.values()) for x in s.eval for it in x.history]
    atomic_write_text(b.path("lexical_corpus.txt"), "\n".join(" ".join(t.split()) for t in corpus) + "\n")
    atomic_write_json(saved, {"authors": s.ids(), "labels": list(s.labels), "config": asdict(b.config.data),
                              "articles": {"train_history": sum(len(x.history) for x in s.train),
                                           "eval_history": sum(len(x.history) for x in s.eval),
                                           "heldout_per_author": b.config.data.k}})


# --- training ---------------------------------------------------------------------------------------


def budget_callback(minutes: float | None):
    """Stops training (with a checkpoint, then ``final/``) once ``minutes`` of wall time have passed."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        start = time.perf_counter()
        stopped = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if minutes is not None and time.perf_counter() - self.start > minutes * 60:
                self.stopped = control.should_save = control.should_training_stop = True

    return TimeBudget()


def stage_train(b: Bench, run: str, **inject: Any) -> None:
    """GRPO on the training authors (``inject``: a judge/reader, for tests); resumes from a checkpoint."""
    from bump_profiles.train import prepare_data, train

    cfg = b.train_config(run)
    check_same_split(b.split.train, prepare_data(cfg).train)
    folder = Path(cfg.output_dir)
    resume = folder.is_dir() and any(folder.glob("checkpoint-*"))
    budget = budget_callback(b.config.budget_minutes)
    result = train(cfg, resume=resume, overwrite=not resume and folder.exists(), callbacks=[budget], **inject)
    atomic_write_json(folder / "summary.json", {**result.__dict__, "resumed": resume, "stopped_by_budget": budget.stopped,
                                                "budget_minutes": b.config.budget_minutes})


# --- profiles and references ------------------------------------------------------------------------


def generator(b: Bench, name: str):
    """The untrained policy, or a trained run's ``final/`` (a LoRA adapter merged, or full weights)."""
    from bump_profiles.models import load_causal_lm

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


def stage_profiles(b: Bench, name: str) -> None:
    """Greedy profiles of the evaluation authors from their histories (resumable per author)."""
    from bump_profiles.generate import TransformersBackend, generate_profiles
    from bump_profiles.models import load_tokenizer
    from bump_profiles.prompts import ProfilePrompt

    cfg = b.train_config("bump")
    p = cfg.prompt
    backend = TransformersBackend(generator(b, name), load_tokenizer(cfg.policy.model), batch_size=b.config.eval.batch_size,
                                  name=f"{name}:{cfg.policy.model}")
    generate_profiles(b.split.eval, backend, ProfilePrompt(p.template, p.max_words, p.history_items, p.history_tokens),
                      b.profile_file(name), max_new_tokens=cfg.grpo.max_completion_length, progress=False)


def profiles_done(b: Bench, name: str) -> bool:
    from bump_profiles.generate import read_done

    return {s.user.id for s in b.split.eval} <= read_done(b.profile_file(name))


def stage_references(b: Bench) -> None:
    """history@budget (cut to each BUMP profile's token count), keywords, full history (cut to a budget)."""
    from bump_profiles.authors.keywords import keyword_profiles
    from bump_profiles.baselines import budget_history
    from bump_profiles.data.render import render_history
    from bump_profiles.generate import load_profiles

    count = b.count_tokens()
    bump = load_profiles(b.profile_file("BUMP"))
    cap = b.config.eval.full_history_tokens
    refs = {
        "history@budget": budget_history(b.split.eval, {u: count(p) for u, p in bump.items()}, count),
        "keywords": keyword_profiles(b.split.eval, b.split.train, b.config.eval.keyword_words),
        "full history": {s.user.id: render_history(s.history, max_tokens=cap, count_tokens=count, bullet="") for s in b.split.eval},
    }
    for name, profiles in refs.items():
        lines = [json.dumps({"user_id": u, "profile": p, "model": f"reference:{name}"}, ensure_ascii=False) for u, p in profiles.items()]
        atomic_write_text(b.profile_file(name), "\n".join(lines) + "\n")


def profile_sets(b: Bench) -> dict[str, dict[str, str]]:
    from bump_profiles.generate import load_profiles

    return {name: load_profiles(b.profile_file(name)) for name in (*GENERATORS, *REFERENCES) if b.evaluates(name)}


def run(config: AuthorsBenchConfig, stages: list[str] | None = None, *, docs: str | Path | None = None,
        beside: list[str | Path] | None = None, inject: dict[str, dict[str, Any]] | None = None) -> Bench:
    """Run (or resume) ``stages`` (default: all, in order). ``beside``: finished runs (other training
    seeds) shown in this run's table; ``inject``: per-stage test doubles."""
    from bump_profiles.authors import evaluate, report

    wanted = stages or list(STAGES)
    unknown = sorted(set(wanted) - set(STAGES))
    if unknown:
        raise ConfigError(f"unknown stage(s) {', '.join(unknown)} (known: {', '.join(STAGES)})")
    unknown = sorted(set(config.eval.only or ()) - {*GENERATORS, *REFERENCES})
    if unknown:
        raise ConfigError(f"eval.only: unknown profile set(s) {', '.join(unknown)} (known: {', '.join([*GENERATORS, *REFERENCES])})")
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
            for name in filter(b.evaluates, GENERATORS):
                if not b.skip(f"profiles {name}", profiles_done(b, name)):
                    with b.timing(f"profiles {name}"):
                        stage_profiles(b, name)
        elif stage == "references" and any(map(b.evaluates, REFERENCES)) and not b.skip(
                stage, all(b.profile_file(n).exists() for n in REFERENCES)):
            with b.timing(stage):
                stage_references(b)
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
