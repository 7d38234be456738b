"""The run config mapped onto TRL and PEFT: ``GRPOConfig`` (one reward call per step holds B users x G
rollouts), bfloat16 autocast, and the LoRA config."""

from __future__ import annotations

from typing import Any

from bump_profiles.config import TrainConfig
from bump_profiles.errors import ConfigError


def generation_layout(users_per_call: int, num_generations: int, micro_batch_size: int, num_processes: int) -> int:
    """``steps_per_generation`` such that one generation batch (one reward call) holds B users x G rollouts.

    The B*G rollouts are split evenly over processes and micro-batches, so B*G must be a multiple of
    ``micro_batch_size * num_processes``.
    """
    total = users_per_call * num_generations
    per_pass = micro_batch_size * num_processes
    if total % per_pass:
        raise ConfigError(
            f"B*G = {users_per_call}*{num_generations} = {total} rollouts per step must be a multiple of "
            f"grpo.micro_batch_size * processes = {micro_batch_size}*{num_processes}: change one of them"
        )
    return total // per_pass


def use_bf16(config: TrainConfig, *, cuda: bool) -> tuple[bool, str]:
    """Whether the loss runs under bfloat16 autocast, and why (the line ``train`` logs).

    ``grpo.bf16`` None means auto: on for CUDA and on a CPU with native bfloat16
    (:func:`bump_profiles.engines.models.cpu_has_bf16`); float32 otherwise."""
    from bump_profiles.engines.models import cpu_has_bf16

    if config.grpo.bf16 is not None:
        return config.grpo.bf16, "set by grpo.bf16"
    if cuda:
        return True, "auto: CUDA"
    if cpu_has_bf16():
        return True, "auto: the CPU has native bfloat16 (avx512_bf16/AMX)"
    return False, "auto: the CPU lacks native bfloat16 (no avx512_bf16/AMX), float32 fallback"


def grpo_args(config: TrainConfig, *, num_processes: int, cuda: bool):
    """TRL ``GRPOConfig`` for a run; CPU runs get ``use_cpu=True``, and bf16 autocast per :func:`use_bf16`."""
    from trl import GRPOConfig

    g = config.grpo
    steps = generation_layout(config.reward.users_per_call, g.num_generations, g.micro_batch_size, num_processes)
    weights = None
    if config.reward.kind == "bump+task":
        weights = list(config.reward.weights)
    kwargs: dict[str, Any] = dict(
        output_dir=config.output_dir,
        seed=config.seed,
        data_seed=config.seed,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        learning_rate=g.learning_rate,
        lr_scheduler_type=g.lr_scheduler_type,
        max_steps=g.max_steps,
        per_device_train_batch_size=g.micro_batch_size,
        gradient_accumulation_steps=steps,
        steps_per_generation=steps,
        num_iterations=1,
        beta=g.beta,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        reward_weights=weights,
        activation_checkpointing=g.gradient_checkpointing,
        bf16=use_bf16(config, cuda=cuda)[0],
        use_cpu=not cuda,
        save_strategy="steps",
        save_steps=g.save_steps,
        save_total_limit=g.save_total_limit,
        logging_steps=g.logging_steps,
        report_to=g.report_to,
        use_vllm=g.use_vllm,
        vllm_mode=g.vllm_mode,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        vllm_server_base_url=g.vllm_server_base_url,
        dataloader_num_workers=0,
        # a template with a thinking switch (Qwen3) would open <think> in every rollout; others ignore it
        chat_template_kwargs={"enable_thinking": False},
    )
    kwargs.update(g.extra)
    try:
        return GRPOConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"grpo: TRL rejected the settings: {exc}") from exc


def lora_config(config: TrainConfig):
    """PEFT LoraConfig for the policy, or None for full fine-tuning."""
    if not config.policy.lora:
        return None
    from peft import LoraConfig

    p = config.policy
    return LoraConfig(r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=p.lora_dropout,
                      target_modules=p.lora_target_modules, task_type="CAUSAL_LM")
