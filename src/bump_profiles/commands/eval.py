"""``bump-profiles eval``: LaMP's official metrics, reader runs with each method, comparison tables."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate profiles on LaMP tasks (official metrics, readers, baselines)")
    esub = p.add_subparsers(dest="eval_command", metavar="ACTION", required=True)

    lamp = esub.add_parser("lamp", help="score a predictions file against golds with the official metrics")
    lamp.add_argument("--task", required=True, help="LaMP_1, LaMP_2_news, LaMP_2_movies, LaMP_3 ... LaMP_7")
    lamp.add_argument("--golds", required=True, help="official outputs file {task, golds: [{id, output}]}")
    lamp.add_argument("--predictions", required=True, help="predictions in the same format")
    lamp.add_argument("--rouge-aggregation", choices=["mean", "bootstrap"], default="mean",
                      help="generation tasks: exact mean of per-question F (default) or the official bootstrap median "
                           "(rouge-score's BootstrapAggregator, seeded by --seed)")
    lamp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap aggregation")
    lamp.set_defaults(func=cmd_lamp)

    run = esub.add_parser("run", help="answer LaMP questions with a reader and one personalization method")
    _add_inputs(run, golds_required=False)
    run.add_argument("--reader", default="smollm2-135m", help="bundled name, local path or hub id; with --base-url, "
                     "the endpoint's model name; 'probe': MiniLM features and a logistic regression (label tasks), "
                     "trained on --train-questions or cross-fitted over the users (no user predicted by a model "
                     "that saw their questions)")
    run.add_argument("--train-questions", nargs="+", default=[], help="probe: training users' questions file(s)")
    run.add_argument("--train-golds", nargs="+", default=[], help="probe: golds of the training questions")
    run.add_argument("--base-url", help="OpenAI-compatible endpoint (e.g. http://localhost:8000/v1) to read with")
    run.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    run.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                     help="reader weights; auto = bfloat16 where the CPU/GPU has it natively (default: auto)")
    run.add_argument("--batch-size", type=int, default=8, help="questions per batch (requests in flight for an endpoint)")
    run.add_argument("--max-new-tokens", type=int, help="answer budget (default: the task's)")
    run.add_argument("--rouge-aggregation", choices=["mean", "bootstrap"], default="mean",
                     help="generation tasks: mean F or the official bootstrap median (seed 0); see docs/lamp.md")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--out", required=True, help="folder for predictions.json, generations.jsonl, results.json")
    run.set_defaults(func=cmd_run)

    sft = esub.add_parser("sft", help="LoRA-SFT a reader on prompts that carry cached profiles (second stage)")
    _add_inputs(sft, golds_required=True)
    sft.add_argument("--model", default="smollm2-135m", help="base reader: bundled name, local path or hub id")
    sft.add_argument("--epochs", type=float, default=1.0)
    sft.add_argument("--max-steps", type=int, default=-1, help="overrides --epochs when positive")
    sft.add_argument("--lr", type=float, default=2e-4)
    sft.add_argument("--lora-r", type=int, default=16)
    sft.add_argument("--batch-size", type=int, default=4)
    sft.add_argument("--max-length", type=int, default=1024, help="tokens per training example")
    sft.add_argument("--seed", type=int, default=0)
    sft.add_argument("--out", required=True, help="folder for the merged reader (load it with eval run --reader)")
    sft.set_defaults(func=cmd_sft)

    compare = esub.add_parser("compare", help="print a markdown table of runs (methods against metrics)")
    compare.add_argument("results", nargs="+", help="results.json files or run folders")
    compare.set_defaults(func=cmd_compare)


def cmd_lamp(args: argparse.Namespace) -> int:
    from bump_profiles.data import load_lamp_outputs
    from bump_profiles.errors import DataError
    from bump_profiles.lamp import get_task, score

    task = get_task(args.task)
    golds, preds = load_lamp_outputs(args.golds), load_lamp_outputs(args.predictions)
    try:
        metrics = score(task, golds, preds, rouge=args.rouge_aggregation, seed=args.seed)
    except DataError as exc:
        raise DataError(exc.problem, path=f"{args.predictions} vs {args.golds}", record=exc.record) from exc
    extra = {"rouge": args.rouge_aggregation} if task.kind == "generation" else {}
    print(json.dumps({"task": task.name, "questions": len(golds), **metrics, **extra}))
    return 0


def _add_inputs(p: argparse.ArgumentParser, *, golds_required: bool) -> None:
    """Arguments shared by ``run`` and ``sft``: the task, its questions, golds and the method's inputs."""
    p.add_argument("--task", required=True, help="LaMP_1, LaMP_2_news, LaMP_2_movies, LaMP_3 ... LaMP_7")
    p.add_argument("--questions", required=True, nargs="+", help="LaMP questions file(s); users are merged")
    p.add_argument("--golds", nargs="+" if golds_required else "*", required=golds_required, default=[],
                   help="outputs file(s) with a gold for every question"
                   + ("" if golds_required else " (without them, predictions are written and nothing is scored)"))
    p.add_argument("--method", choices=["none", "retrieval", "profile", "profile+retrieval"],
                   default="profile" if golds_required else "none")
    p.add_argument("--profiles", help="profiles JSONL ({user_id, profile}) for the profile methods")
    p.add_argument("--retriever", choices=["bm25", "dense"], default="bm25", help="for the retrieval methods")
    p.add_argument("--k", type=int, default=1, help="retrieved items per question (default 1)")


def _inputs(args: argparse.Namespace, max_new_tokens: int | None = None):
    """Task, users (golds attached), config, profiles and retriever, as the arguments ask."""
    from bump_profiles.data import load_lamp_outputs, load_lamp_questions
    from bump_profiles.errors import ConfigError, DataError
    from bump_profiles.lamp import get_task
    from bump_profiles.lamp.runner import EvalConfig, attach_golds

    task = get_task(args.task)
    if not task.has_files:
        raise ConfigError(f"task '{task.name}' has no LaMP files; run it in memory with bump_profiles.lamp.runner")
    config = EvalConfig(method=args.method, retriever=args.retriever, k=args.k, max_new_tokens=max_new_tokens,
                        rouge=getattr(args, "rouge_aggregation", "mean"))
    if config.uses_profile and not args.profiles:
        raise ConfigError(f"--method {args.method} needs --profiles")
    users = []
    for path in args.questions:
        users += load_lamp_questions(path, task=task.name).users
    ids = [u.id for u in users]
    if len(set(ids)) != len(ids):
        raise DataError("the same user appears in two questions files", path=", ".join(args.questions))
    if args.golds:
        golds: dict[str, str] = {}
        for path in args.golds:
            golds.update(load_lamp_outputs(path))
        attach_golds(users, golds, source=", ".join(args.golds))
    profiles = None
    if config.uses_profile:
        from bump_profiles.data.lamp import question_users
        from bump_profiles.data.profiles import load_profiles

        profiles = load_profiles(args.profiles)
        missing = [u.id for u in question_users(users) if u.id not in profiles]
        if missing:
            raise DataError(f"no profile for {len(missing)} question(s), e.g. {', '.join(missing[:3])}", path=args.profiles)
        from bump_profiles.profiles.provenance import load_reads, refuse_outside

        refuse_outside(args.profiles, load_reads(args.profiles), {u.id: u.interactions for u in question_users(users)})
    retriever = None
    if config.uses_retrieval:
        from bump_profiles.lamp.retrieval import make_retriever

        retriever = make_retriever(config.retriever)
    return task, users, config, profiles, retriever


def cmd_run(args: argparse.Namespace) -> int:
    from bump_profiles.lamp.runner import run_eval

    task, users, config, profiles, retriever = _inputs(args, args.max_new_tokens)
    reader = _probe(args, task, config, profiles, retriever) if args.reader == "probe" else _reader(args)
    info = {"questions_files": args.questions, "golds_files": args.golds}
    if config.uses_profile:
        info["profiles_file"] = args.profiles
    results = run_eval(task, users, reader, config, profiles=profiles, retriever=retriever, out_dir=args.out, info=info)
    print(json.dumps(results, indent=2))
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    import torch

    from bump_profiles.engines.models import load_causal_lm, load_tokenizer
    from bump_profiles.lamp.runner import build_prompts
    from bump_profiles.lamp.sft import ReaderSFTConfig, sft_dataset, train_reader

    task, users, config, profiles, retriever = _inputs(args)
    prompts = build_prompts(task, users, config, profiles=profiles, retriever=retriever)
    golds = {q["id"]: q["output"] for u in users for q in u.extra["questions"]}
    sft_config = ReaderSFTConfig(args.out, lora_r=args.lora_r, learning_rate=args.lr, epochs=args.epochs,
                                 max_steps=args.max_steps, batch_size=args.batch_size, max_length=args.max_length,
                                 seed=args.seed)
    torch.manual_seed(args.seed)
    out = train_reader(load_causal_lm(args.model), load_tokenizer(args.model), sft_dataset(prompts, golds), sft_config)
    print(json.dumps({"reader": str(out), "task": task.name, "method": config.method, "examples": len(prompts),
                      "use": f"bump-profiles eval run --reader {out} --method {config.method} ..."}))
    return 0


def _probe(args: argparse.Namespace, task, config, profiles, retriever):
    """The probe reader, trained on the training questions with the same method, or cross-fitted."""
    from bump_profiles.errors import ConfigError
    from bump_profiles.lamp.probe import ProbeReader

    if bool(args.train_questions) != bool(args.train_golds):
        raise ConfigError("--train-questions and --train-golds go together")
    if not args.train_questions:
        return ProbeReader()
    from bump_profiles.data import load_lamp_outputs, load_lamp_questions
    from bump_profiles.data.lamp import question_users
    from bump_profiles.lamp.runner import attach_golds, build_prompts

    users = [u for path in args.train_questions for u in load_lamp_questions(path, task=task.name).users]
    golds: dict[str, str] = {}
    for path in args.train_golds:
        golds.update(load_lamp_outputs(path))
    attach_golds(users, golds, source=", ".join(args.train_golds))
    if profiles is not None:
        from bump_profiles.profiles.provenance import load_reads, refuse_outside

        refuse_outside(args.profiles, load_reads(args.profiles), {u.id: u.interactions for u in question_users(users)})
    return ProbeReader(train=(build_prompts(task, users, config, profiles=profiles, retriever=retriever), golds))


def _reader(args: argparse.Namespace):
    from bump_profiles.lamp.readers import causal_lm_reader, openai_reader

    progress = not args.no_progress
    if args.base_url:
        return openai_reader(args.base_url, args.reader, api_key_env=args.api_key_env, concurrency=args.batch_size,
                             progress=progress)
    return causal_lm_reader(args.reader, dtype=args.dtype, batch_size=args.batch_size, progress=progress)


def cmd_compare(args: argparse.Namespace) -> int:
    from bump_profiles.lamp.runner import compare_table, load_results

    print(compare_table(load_results(args.results)))
    return 0
