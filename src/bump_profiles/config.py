"""Training run configuration: dataclasses loaded from YAML, overridable with ``--set key=value``.

Every check that can fail without a model runs here, in ``__post_init__``, so that a bad config
fails in milliseconds with a :class:`~bump_profiles.errors.ConfigError` naming the key, before any
model loads. Each field's ``help`` is its documentation (``bump-profiles train --help-config``
prints them); docs/training.md shows complete examples.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bump_profiles.data import FORMATS
from bump_profiles.errors import ConfigError
from bump_profiles.judges import JudgeConfig
from bump_profiles.judges.calibration import CALIBRATIONS, TRAINING_CALIBRATIONS
from bump_profiles.profiles.prompts import MERGE_INSTRUCTION, UPDATE_INSTRUCTION, ProfilePrompt
from bump_profiles.rewards.contrast_config import ContrastConfig

REWARD_KINDS = ("bump", "task", "bump+task")
DATA_FORMATS = FORMATS
# Keys that may differ when resuming a run (extending or re-pacing it does not change what was learned).
RESUMABLE_CHANGES = {"grpo.max_steps", "grpo.save_steps", "grpo.logging_steps", "grpo.report_to"}


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class PolicyConfig:
    """The profile generator being trained."""

    model: str = _help("hub id, local path or bundled short name (smollm2-135m)", "smollm2-135m")
    dtype: str = _help("weights dtype: float32 | bfloat16 (float32 trains reliably on CPU)", "float32")
    lora: bool = _help("train a LoRA adapter (True) or every weight (False)", True)
    lora_r: int = _help("LoRA rank", 16)
    lora_alpha: int = _help("LoRA alpha (scale = alpha / r)", 32)
    lora_dropout: float = _help("LoRA dropout", 0.0)
    lora_target_modules: str | list[str] = _help("modules LoRA wraps: 'all-linear' or a list of names", "all-linear")

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"policy.dtype: '{self.dtype}' is not float32, bfloat16 or float16")
        if self.lora and self.lora_r < 1:
            raise ConfigError(f"policy.lora_r: must be at least 1, got {self.lora_r}")


@dataclass
class SyntheticData:
    """Seeded synthetic users with known interests (bump_profiles.data.synthetic)."""

    users: int = _help("number of synthetic users", 64)
    seed: int = _help("seed of the synthetic generator", 0)

    def __post_init__(self) -> None:
        if self.users < 2:
            raise ConfigError(f"data.synthetic.users: need at least 2 users, got {self.users}")


@dataclass
class DataConfig:
    """Where users come from and how each is split into history and held-out interactions."""

    path: str | None = _help("a LaMP questions .json or a JSONL log of users (or use data.synthetic)", None)
    format: str | None = _help("lamp | jsonl; default: from the extension", None)
    outputs: str | None = _help("LaMP *_outputs.json with the golds (needed by reward: task on LaMP)", None)
    synthetic: SyntheticData | None = _help("synthetic users {users: N, seed: S}; the default when no path is set", None)
    k: int = _help("held-out interactions per user (the judge ranks these; the generator never sees them)", 2)
    horizon: int | None = _help("spread the k held-out items evenly over the last `horizon` items, none read (None: the last k)", None)
    split: str = _help("which interactions are held out: recent | random", "recent")
    eval_users: float = _help("users kept out of training for evaluation: a fraction (< 1) or a count", 0.2)
    max_users: int | None = _help("use at most this many users (after the evaluation split); None = all", None)

    def __post_init__(self) -> None:
        if self.path is None and self.synthetic is None:
            self.synthetic = SyntheticData()
        if self.path is not None and self.synthetic is not None:
            raise ConfigError("data: set one of data.path and data.synthetic, not both")
        if self.path is not None and not Path(self.path).exists():
            raise ConfigError(f"data.path: no such file: {self.path}")
        if self.outputs is not None and not Path(self.outputs).exists():
            raise ConfigError(f"data.outputs: no such file: {self.outputs}")
        if self.format is not None and self.format not in DATA_FORMATS:
            raise ConfigError(f"data.format: '{self.format}' is not one of {', '.join(DATA_FORMATS)}")
        if self.k < 1 or (self.horizon is not None and (self.horizon < self.k or self.split != "recent")):
            raise ConfigError(f"data.k >= 1, and data.horizon >= k with split recent; got k={self.k}, horizon={self.horizon}")
        if self.split not in ("recent", "random"):
            raise ConfigError(f"data.split: '{self.split}' is not recent or random")
        if self.eval_users < 0 or (self.eval_users >= 1 and not float(self.eval_users).is_integer()):
            raise ConfigError(f"data.eval_users: a fraction in [0, 1) or a whole count, got {self.eval_users}")


@dataclass
class PromptConfig(ProfilePrompt):
    """The generator's prompt: a :class:`~bump_profiles.profiles.prompts.ProfilePrompt` (its fields are the
    ``prompt.*`` keys) plus update and chunked modes."""

    mode: str = _help("scratch: profile from the history; update: previous profile + the recent history items (profiles.update); "
                      "chunked: notes on chunks of the history, then a merge (profiles.chunked)", "scratch")
    update_recent: int = _help("update mode: the most recent history items shown as new interactions", 4)
    previous_profiles: str | None = _help("update mode: profiles JSONL of the older history (`profile --k <data.k + update_recent>`)", None)
    update_template: str = _help("update mode: template with {previous_profile}, {history} and {max_words}", UPDATE_INSTRUCTION)
    previous_from: str = _help("update mode: file (prompt.previous_profiles) | policy (written by the policy in training)", "file")
    previous_refresh_steps: int = _help("previous_from=policy: steps a previous profile is reused (1: current policy)", 1)
    previous_rounds: int = _help("previous_from=policy: the previous profile's own chain: from scratch, then rounds - 1 updates", 1)
    chunks: int = _help("chunked mode: chunks of the history read, each noted within history_items / history_tokens", 4)
    merge_template: str = _help("chunked mode: the merge prompt, {history} (the notes, oldest first) and {max_words}", MERGE_INSTRUCTION)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in ("scratch", "update", "chunked"):
            raise ConfigError(f"prompt.mode: 'scratch', 'update' or 'chunked', not {self.mode!r}")
        if self.mode == "chunked" and (self.chunks < 1 or not self.history_items or "{history}" not in self.merge_template):
            raise ConfigError("prompt.mode=chunked needs prompt.chunks >= 1, prompt.history_items (the items a chunk holds) "
                              "and a prompt.merge_template with {history}")
        if self.previous_from not in ("file", "policy") or min(self.previous_refresh_steps, self.previous_rounds) < 1 or (self.previous_from == "policy" and (self.mode != "update" or self.previous_profiles)):
            raise ConfigError(f"prompt.previous_from={self.previous_from!r}: 'file' or 'policy'; policy needs prompt.mode=update and no prompt.previous_profiles (it writes them); previous_refresh_steps and previous_rounds >= 1")
        if self.mode == "update":
            if self.previous_from == "file" and not self.previous_profiles:
                raise ConfigError("prompt.mode=update needs prompt.previous_profiles (a profiles JSONL of the older history)")
            if self.update_recent < 1 or not all(f in self.update_template for f in ("{previous_profile}", "{history}")):
                raise ConfigError("prompt.update_recent: at least 1; prompt.update_template: must contain {previous_profile} and {history}")


@dataclass
class CopyGuards:
    """The BUMP reward's copy and span guards (keyword arguments of BumpReward of the same names)."""

    copy_threshold: float = _help("4-gram copy rate from the history above which copy_penalty applies", 0.3)
    copy_penalty: float = _help("reward lost per unit of 4-gram copy rate above copy_threshold", 0.0)
    max_copied_span: int | None = _help("longest verbatim history span (words) a profile may hold without span_penalty", None)
    span_penalty: float = _help("reward lost per unit share of the profile's words inside longer copied spans", 0.0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.copy_threshold <= 1.0:
            raise ConfigError(f"reward.bump_options.copy_threshold: must be in [0, 1], got {self.copy_threshold}")
        if min(self.copy_penalty, self.span_penalty) < 0:
            raise ConfigError("reward.bump_options: copy_penalty and span_penalty must be >= 0")
        if self.span_penalty > 0 and (self.max_copied_span is None or self.max_copied_span < 1):
            raise ConfigError("reward.bump_options.span_penalty needs max_copied_span (words) of at least 1")


@dataclass
class RewardConfig:
    """What the policy is rewarded for: BUMP (self-supervised), a task's labels, or both."""

    kind: str = _help("bump | task (reader log-likelihood of LaMP golds) | bump+task", "bump")
    users_per_call: int = _help("B: distinct users in every reward call (the in-batch candidates)", 4)
    direction_weights: list[float] = _help("BUMP weights of NDCG_A and NDCG_B", factory=lambda: [0.5, 0.5])
    length_target: int | None = _help("profile tokens past which the length penalty applies", None)
    length_penalty: float = _help("reward lost per token past length_target (0.005: 16 tokens over cost 0.08)", 0.0)
    length_floor: int | None = _help("profile tokens below which the same per-token length penalty applies (None: no floor)", None)
    repetition_penalty: float = _help("reward lost per unit share of the profile's word 3-grams that repeat an earlier one", 0.0)
    bump_options: CopyGuards = _help("copy and span guards of the BUMP reward", factory=CopyGuards)
    weights: list[float] = _help("bump+task: weights of the bump and task rewards", factory=lambda: [1.0, 1.0])
    contrast: ContrastConfig = _help("negatives beyond the batch: population bank, profile queue", factory=ContrastConfig)
    reader: str | None = _help("task reward's reader model; None = the policy's base model", None)
    reader_dtype: str = _help("task reward reader dtype", "float32")

    def __post_init__(self) -> None:
        if self.kind not in REWARD_KINDS:
            raise ConfigError(f"reward.kind: '{self.kind}' is not one of {', '.join(REWARD_KINDS)}")
        if self.users_per_call < 2:
            raise ConfigError(
                f"reward.users_per_call: B must be at least 2 (other users are the negatives), got {self.users_per_call}"
            )
        if len(self.direction_weights) != 2 or len(self.weights) != 2:
            raise ConfigError("reward.direction_weights and reward.weights take two numbers each")
        if self.length_penalty < 0:
            raise ConfigError(f"reward.length_penalty: must be >= 0, got {self.length_penalty}")
        if self.repetition_penalty < 0:
            raise ConfigError(f"reward.repetition_penalty: must be >= 0, got {self.repetition_penalty}")


@dataclass
class GRPOSection:
    """GRPO and optimisation settings, passed on to TRL's GRPOConfig."""

    num_generations: int = _help("G: profiles sampled per user", 4)
    max_completion_length: int = _help("profile length limit in tokens", 64)
    temperature: float = _help("sampling temperature of rollouts", 1.0)
    top_p: float = _help("nucleus sampling of rollouts (1.0: off)", 1.0)
    learning_rate: float = _help("learning rate (LoRA takes ~1e-4 to 3e-4; full fine-tuning ~1e-6)", 3e-4)
    lr_scheduler_type: str = _help("transformers scheduler name", "constant")
    max_steps: int = _help("optimizer steps; each sees B users x G profiles", 30)
    micro_batch_size: int = _help("completions per forward/backward pass on each process", 4)
    beta: float = _help("KL coefficient against the reference policy (0 = no reference model, no KL logged)", 0.0)
    loss_type: str = _help("TRL loss: dapo | grpo | dr_grpo | bnpo | ...", "dapo")
    scale_rewards: str = _help("advantage scaling: group | batch | none", "group")
    gradient_checkpointing: bool = _help("recompute activations (less memory, slower on small models)", False)
    bf16: bool | None = _help("bfloat16 autocast of the loss (rollouts stay in the weights dtype); None = auto: on for CUDA "
                               "and for a CPU with native bfloat16 (avx512_bf16/AMX), else float32", None)
    save_steps: int = _help("save a checkpoint every N steps", 10)
    save_total_limit: int | None = _help("keep at most this many checkpoints", 2)
    logging_steps: int = _help("log (and write metrics.jsonl) every N steps", 1)
    report_to: list[str] = _help("TRL/transformers loggers: none | tensorboard | wandb", factory=lambda: ["none"])
    use_vllm: bool = _help("generate rollouts with vLLM (GPU)", False)
    vllm_mode: str = _help("colocate | server", "colocate")
    vllm_gpu_memory_utilization: float = _help("vLLM colocate memory share", 0.3)
    vllm_server_base_url: str | None = _help("vLLM server mode: http://host:port", None)
    extra: dict[str, Any] = _help("any other GRPOConfig argument, passed through", factory=dict)

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ConfigError(
                f"grpo.num_generations: G must be at least 2 (GRPO compares rollouts of one user), got {self.num_generations}"
            )
        for name in ("max_completion_length", "max_steps", "micro_batch_size", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"grpo.{name}: must be at least 1, got {getattr(self, name)}")
        if self.vllm_mode not in ("colocate", "server") or not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"grpo.vllm_mode '{self.vllm_mode}' (colocate or server) or grpo.top_p {self.top_p} (in (0, 1])")


@dataclass
class TrainConfig:
    """One training run: everything needed to reproduce it is here (saved as config.yaml in the run)."""

    output_dir: str = _help("run directory: checkpoints, metrics.jsonl, final model, config.yaml", "runs/bump")
    seed: int = _help("seed of sampling, splits and initialisation", 0)
    policy: PolicyConfig = _help("the generator", factory=PolicyConfig)
    data: DataConfig = _help("users and splits", factory=DataConfig)
    prompt: PromptConfig = _help("generator prompt", factory=PromptConfig)
    judge: JudgeConfig = _help("judge of the BUMP reward (bump_profiles.judges.JudgeConfig)", factory=JudgeConfig)
    reward: RewardConfig = _help("reward", factory=RewardConfig)
    grpo: GRPOSection = _help("GRPO", factory=GRPOSection)

    def __post_init__(self) -> None:
        if not CALIBRATIONS[self.judge.calibration].training:
            raise ConfigError(f"judge.calibration: '{self.judge.calibration}' is transductive (evaluation only); "
                              f"train with one of {', '.join(TRAINING_CALIBRATIONS)}")
        if self.judge.kind == "copymask":
            raise ConfigError("judge.kind: copymask is an evaluation judge (it needs every evaluated history); "
                              "train with embedding, likelihood or yesno")
        if self.reward.kind != "bump" and self.data.synthetic is None:
            if self.data.format == "jsonl" or (self.data.format is None and str(self.data.path).endswith(".jsonl")):
                raise ConfigError(f"reward.kind: '{self.reward.kind}' needs task labels: LaMP data or data.synthetic")
            if self.data.outputs is None:
                raise ConfigError(f"data.outputs: reward.kind '{self.reward.kind}' on LaMP needs the *_outputs.json golds")


# --- loading --------------------------------------------------------------------------------------


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """A validated TrainConfig from a YAML file (or the defaults when ``path`` is None) plus overrides."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: malformed YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
        data = loaded or {}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. grpo.max_steps=10")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        _set_path(data, key.strip().split("."), value)
    return from_dict(TrainConfig, data)


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        node = data.get(k)
        if not isinstance(node, dict):
            node = data[k] = {}
        data = node
    data[keys[-1]] = value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build dataclass ``cls`` (and its nested ones) from a mapping, with typed parsing by ``dacite``.

    Unknown keys fail; YAML/--set already parsed numbers and booleans, and the hooks below add only
    what YAML leaves ambiguous (``3e-4`` read as a string, ``10.0`` for an integer, a number for a
    string). Every failure is a ConfigError naming the dotted key.
    """
    import dacite

    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {data!r}")
    hooks = {int: _to_int, float: _to_float, str: _to_str}
    try:
        return dacite.from_dict(cls, data, config=dacite.Config(strict=True, type_hooks=hooks))  # type: ignore[arg-type]
    except dacite.UnexpectedDataError as exc:
        name = sorted(exc.keys)[0]
        key, known = _unknown_key(cls, data, name)
        key = key or name
        raise ConfigError(f"unknown config key '{key}' (known under {key.rpartition('.')[0] or 'top level'}: {known})") from None
    except dacite.WrongTypeError as exc:  # UnionMatchError included
        value = exc.value.value if isinstance(exc.value, _Rejected) else exc.value
        kind = exc.field_type
        expected = "a mapping" if dataclasses.is_dataclass(kind) else _EXPECTED.get(kind, f"one of {kind}")
        raise ConfigError(f"{exc.field_path}: expected {expected}, got {value!r}") from None


@dataclass(frozen=True)
class _Rejected:
    """A value a type hook refused (a boolean for an integer): fails dacite's type check by design."""
    value: Any


_EXPECTED = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _to_int(value: Any) -> Any:
    return _Rejected(value) if isinstance(value, bool) else int(value) if isinstance(value, float) and value.is_integer() else value


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _Rejected(value)
    if isinstance(value, (int, str)):  # YAML reads 3e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _to_str(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _unknown_key(cls: type, data: dict[str, Any], name: str) -> tuple[str, str]:
    """The dotted path of the unknown key ``name`` dacite found somewhere in ``data``, and the known keys there."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    if name in data and name not in known:
        return name, ", ".join(sorted(known))
    for key, value in data.items():
        inner = [a for a in (hints.get(key), *typing.get_args(hints.get(key))) if dataclasses.is_dataclass(a)]
        if inner and isinstance(value, dict):
            path, names = _unknown_key(inner[0], value, name)
            if path:
                return f"{key}.{path}", names
    return "", ""


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain data (what config.yaml holds)."""
    return dataclasses.asdict(config)


def to_yaml(config: Any) -> str:
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)


def config_diff(a: Any, b: Any) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    return sorted(_diff(to_dict(a), to_dict(b), ""))


def _diff(a: Any, b: Any, prefix: str) -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            out |= _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def describe(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """One line per config key: name, default and help (for ``--help-config``)."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            lines += describe(hint, f"{prefix}{f.name}.")
            continue
        inner = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        if inner and typing.get_origin(hint) is not list:  # an optional section; a list of them (judge.members) is one key
            lines += describe(inner[0], f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        shown = default[:37] + "..." if isinstance(default, str) and len(default) > 40 else default
        lines.append(f"{prefix}{f.name} = {shown!r}: {f.metadata.get('help', '')}")
    return lines
