"""GRPO training of the profile generator with the BUMP reward (TRL 1.16 ``GRPOTrainer``).

What one optimizer step does:

1. **Users.** TRL's ``RepeatSampler`` draws B distinct training users (``reward.users_per_call``)
   and repeats each user's prompt G times (``grpo.num_generations``), in contiguous groups. A prompt
   holds only the user's history; the k held-out interactions ride along as a dataset column.
2. **One generation batch per step.** ``generation_batch_size = B * G`` and
   ``steps_per_generation = gradient_accumulation_steps = B * G / (micro_batch_size * processes)``:
   the step's B*G rollouts are generated once, rewarded in one call, then consumed in micro-batches
   for one optimizer update (on-policy, one iteration, no importance-ratio clipping in effect).
3. **Reward.** :class:`bump_profiles.rewards.bump.BumpReward` gathers the batch across processes, scores
   every profile against the held-out items of all B users (and back), and returns the bidirectional
   in-batch NDCG of each rollout; it refuses a call with fewer than B distinct users. ``reward: task``
   (:mod:`bump_profiles.rewards.task`) is the labeled comparator; ``bump+task`` passes both to TRL
   with ``reward_weights`` (TRL sums them, weighted, before the group normalisation).
4. **Update.** Group-relative advantages (TRL's ``scale_rewards``, default per group), TRL's
   ``loss_type`` (default ``dapo``), KL to the reference only when ``beta > 0``; LoRA by default.

Around it: a run directory that is never overwritten without ``overwrite``; ``config.yaml`` (the
exact config); checkpoints every ``save_steps`` and ``resume``; ``metrics.jsonl`` (one line per
logged step: reward, ndcg_a, ndcg_b, profile length, KL, step time, distinct users); Ctrl-C saves a
checkpoint at the end of the running step and stops (a second Ctrl-C stops at once); the final
model or adapter with its tokenizer in ``final/``.

The package, one concern a module: :mod:`~bump_profiles.train.data` (the run's users and dataset),
:mod:`~bump_profiles.train.trl_config` (TRL and LoRA arguments), :mod:`~bump_profiles.train.rundir`
(run directory, metrics, Ctrl-C) and :mod:`~bump_profiles.train.run` (the run itself: :func:`train`).
"""

from bump_profiles.train.run import TrainResult, train

__all__ = ["TrainResult", "train"]
