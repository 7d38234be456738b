"""Which bfloat16 recipe for the policy on this CPU: float32, autocast, bf16 weights (+fp32 LoRA), or both.

SmolLM2-135M with LoRA r=16 on all linear layers. Per mode: one training micro-batch (forward of
``--batch`` sequences of ``--tokens`` tokens, the mean log-probability loss, backward, AdamW step)
and sampling ``--new-tokens`` tokens for ``--batch`` prompts; median of ``--repeats`` after one
warm-up. Stability: the largest difference of per-token log-probabilities to float32 on the same
inputs, and whether any loss or gradient is not finite.

Run: ``.venv/bin/python benchmarks/bench_bf16.py --threads 1``  (-> benchmarks/results/bf16.json)
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = ("float32", "autocast", "bf16-weights", "bf16-weights+autocast")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=Path(__file__).name, description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--tokens", type=int, default=300)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--prompt-tokens", type=int, default=None, help="prompt length for sampling (default: half of --tokens)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bf16.json")
    args = p.parse_args(argv)

    import torch
    from bench_judges import machine
    from peft import LoraConfig, get_peft_model

    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    tok = load_tokenizer(args.model)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 20000, (args.batch, args.tokens), generator=gen)
    mask = torch.ones_like(ids)
    prompts = ids[:, : args.prompt_tokens or args.tokens // 2]
    reference = None
    rows = []
    for mode in args.modes:
        torch.manual_seed(0)
        weights = torch.bfloat16 if mode.startswith("bf16-weights") else torch.float32
        base = load_causal_lm(args.model, dtype=weights)
        model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
        lora_dtypes = sorted({str(q.dtype) for q in model.parameters() if q.requires_grad})

        def cast(mode: str = mode):
            if "autocast" in mode:
                return torch.autocast("cpu", dtype=torch.bfloat16)
            return contextlib.nullcontext()

        def logps(model=model, cast=cast):
            with cast():
                logits = model(input_ids=ids, attention_mask=mask).logits
            return torch.log_softmax(logits.float()[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)

        with torch.no_grad():
            lp = logps()
        if reference is None:
            reference = lp
        diff = float((lp - reference).abs().max())
        train_s, gen_s, train_cpu, gen_cpu, finite = [], [], [], [], True
        for r in range(args.repeats + 1):
            t, c = time.perf_counter(), time.process_time()
            loss = -logps().mean()
            loss.backward()
            finite &= bool(torch.isfinite(loss)) and all(
                torch.isfinite(q.grad).all() for q in model.parameters() if q.grad is not None)
            opt.step()
            opt.zero_grad()
            if r:
                train_s.append(time.perf_counter() - t)
                train_cpu.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            with torch.no_grad(), cast():
                model.generate(input_ids=prompts, attention_mask=torch.ones_like(prompts), do_sample=True,
                               max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                               pad_token_id=tok.pad_token_id)
            if r:
                gen_s.append(time.perf_counter() - t)
                gen_cpu.append(time.process_time() - c)
        row = {"mode": mode, "lora_dtype": lora_dtypes, "train_step_s": statistics.median(train_s),
               "generate_s": statistics.median(gen_s), "train_step_cpu_s": statistics.median(train_cpu),
               "generate_cpu_s": statistics.median(gen_cpu), "tokens": args.tokens, "batch": args.batch,
               "new_tokens": args.new_tokens, "max_logp_diff_vs_float32": diff, "finite": finite}
        rows.append(row)
        print(f"{mode:24} batch {args.batch} x {args.tokens} tokens: train {row['train_step_s']:6.2f} s "
              f"(CPU {row['train_step_cpu_s']:6.2f})  generate {args.new_tokens} {row['generate_s']:6.2f} s "
              f"(CPU {row['generate_cpu_s']:6.2f})  "
              f"max |logp - fp32| {diff:.3f}  finite {finite}  LoRA {lora_dtypes}", flush=True)
    atomic_write_json(args.out, {"benchmark": "bf16", "command": "benchmarks/bench_bf16.py " + " ".join(sys.argv[1:]),
                                 "machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "runs": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
