"""Prompt templates: the profile generator's prompt and the judges' prompts, in one place.

Templates are plain ``str.format`` strings so that a config can override them; the fields each one
uses are listed beside it. Chat-template application happens where the tokenizer is known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bump_profiles.data.render import render_history
from bump_profiles.data.schema import Interaction
from bump_profiles.errors import ConfigError

if TYPE_CHECKING:
    from bump_profiles.data.split import UserSplit

# Fields: {history}, {max_words}
PROFILE_INSTRUCTION = (
    "Here is what a user did, most recent first:\n{history}\n\n"
    "Write a concise profile of this user in at most {max_words} words: their interests, preferences "
    "and style, in your own words. Do not list or copy the items above. Write only the profile."
)

# The incremental update: the previous profile plus the interactions since it was written.
# Fields: {previous_profile}, {history} (only the new interactions), {max_words}
UPDATE_INSTRUCTION = (
    "Here is a profile of a user, written earlier:\n{previous_profile}\n\n"
    "Here is what the user did since, most recent first:\n{history}\n\n"
    "Rewrite the profile in at most {max_words} words so that it covers the user as they are now: keep "
    "what still holds, add new interests and preferences, in your own words. Do not list or copy the "
    "items above. Write only the profile."
)

# Subjects as short phrases rather than a portrait in prose: on the news authors the untrained 135M
# generator's profiles from this prompt matched the history cut to the same length, where the portrait
# prompt's trailed it (docs/benchmark-authors.md, "Which prompt"). The service's default.
SUBJECTS_INSTRUCTION = (
    "Here is what a user did, most recent first:\n{history}\n\n"
    "What does this user write about? Name their recurring subjects, people, places and angle in at most "
    "{max_words} words, as short phrases separated by semicolons. Be specific; do not copy the items above. "
    "Write only the phrases."
)
SUBJECTS_UPDATE_INSTRUCTION = (
    "Here are a user's subjects, written earlier:\n{previous_profile}\n\n"
    "Here is what the user did since, most recent first:\n{history}\n\n"
    "Update the subjects in at most {max_words} words so that they cover the user as they are now: keep what "
    "still holds, add new recurring subjects, people, places and angle, as short phrases separated by "
    "semicolons. Do not copy the items above. Write only the phrases."
)
# Chunked reading (bump_profiles.profiles.chunked): one profile merged from notes on consecutive chunks of
# the history, so the generator can name what recurs over more items than one prompt holds.
# Fields: {history} (the notes, oldest period first), {max_words}
MERGE_INSTRUCTION = (
    "Here are notes on what a user wrote about, one note per period, oldest first:\n{history}\n\n"
    "What does this user write about across these periods? Name the subjects, people, places and angle that "
    "recur in at most {max_words} words, as short phrases separated by semicolons. Prefer what recurs over what "
    "appears once. Write only the phrases."
)
# The same merge written as a portrait (the portrait style's scratch and update prompts): a profile kept as
# rolling notes, one per round of new items, is this merge over the latest notes (benchmarks/bench_drift.py).
PORTRAIT_MERGE_INSTRUCTION = (
    "Here are notes on what a user did, one note per period, oldest first:\n{history}\n\n"
    "Write a concise profile of this user as they are now in at most {max_words} words: their interests, "
    "preferences and style, in your own words. Keep what recurs or is recent; leave out what appears only in "
    "the oldest periods. Write only the profile."
)
# --prompt of profile, refresh and serve: (from scratch, update) templates per style
PROMPT_STYLES = {"subjects": (SUBJECTS_INSTRUCTION, SUBJECTS_UPDATE_INSTRUCTION),
                 "portrait": (PROFILE_INSTRUCTION, UPDATE_INSTRUCTION)}

# Judge prompts. Direction A: the query is a profile, the document an interaction.
# Direction B: the query is an interaction, the document a profile. Fields: {query}, {document}.
YESNO_A = (
    "User profile: {query}\n\nInteraction: {document}\n\n"
    "Does this interaction fit the user described by the profile? Answer yes or no."
)
# The profile (the document in B) leads in both directions: one profile meets many items, so its
# KV prefix is computed once and shared (4.1x fewer forward tokens than item-first, measured).
YESNO_B = (
    "User profile: {document}\n\nInteraction: {query}\n\n"
    "Does this profile describe the user who produced the interaction? Answer yes or no."
)
# The likelihood judge scores log p(document | query) against log p(document | neutral prefix).
LIKELIHOOD_CONTEXT = "User profile: {query}\nSomething this user wrote or did: "
LIKELIHOOD_NEUTRAL = "Something a user wrote or did: "


def check_budgets(history_items: int | None, history_tokens: int | None) -> None:
    """A budget is None (none of that kind) or at least 1: 0 would show the generator nothing."""
    for name, value in (("history_items", history_items), ("history_tokens", history_tokens)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"prompt.{name}: must be at least 1 (or None for no budget), got {value!r}")


@dataclass
class ProfilePrompt:
    """How the generator's prompt is built from a user's history (also the ``prompt`` section of a
    training config, :class:`bump_profiles.config.PromptConfig`, which adds update mode)."""

    template: str = field(default=PROFILE_INSTRUCTION, metadata={"help": "instruction template with {history} and {max_words}"})
    max_words: int = field(default=60, metadata={"help": "word budget stated in the instruction"})
    history_items: int | None = field(default=20, metadata={"help": "most recent history items shown"})
    history_tokens: int | None = field(default=400, metadata={"help": "token budget of the rendered history (policy tokenizer)"})

    def __post_init__(self) -> None:
        if "{history}" not in self.template:
            raise ConfigError("prompt.template: must contain {history}")
        check_budgets(self.history_items, self.history_tokens)

    def messages(self, history: Sequence[Interaction], count_tokens: Callable[[str], int] | None = None) -> list[dict[str, str]]:
        """Chat messages for one user: the history, most recent first, within the budgets."""
        text = render_history(history, max_items=self.history_items, max_tokens=self.history_tokens, count_tokens=count_tokens)
        return [{"role": "user", "content": self.template.format(history=text, max_words=self.max_words)}]

    def split_messages(self, split: UserSplit, count_tokens: Callable[[str], int] | None = None) -> list[dict[str, str]]:
        """Training prompt of one user (the same interface as update mode's, bump_profiles.profiles.update)."""
        return self.messages(split.history, count_tokens=count_tokens)


@dataclass
class UpdatePrompt:
    """How the generator's prompt is built from a previous profile and the interactions since."""

    template: str = UPDATE_INSTRUCTION
    max_words: int = 60
    history_items: int | None = 20
    history_tokens: int | None = 400

    def __post_init__(self) -> None:
        check_budgets(self.history_items, self.history_tokens)

    def messages(self, previous_profile: str, new_interactions: Sequence[Interaction],
                 count_tokens: Callable[[str], int] | None = None) -> list[dict[str, str]]:
        """Chat messages for one user: the previous profile, then the new interactions, most recent first."""
        text = render_history(new_interactions, max_items=self.history_items, max_tokens=self.history_tokens,
                              count_tokens=count_tokens)
        content = self.template.format(previous_profile=previous_profile.strip(), history=text, max_words=self.max_words)
        return [{"role": "user", "content": content}]


def prompt_pair(style: str, **budgets) -> tuple[ProfilePrompt, UpdatePrompt]:
    """The from-scratch and update prompts of a ``--prompt`` style, with the same history budgets."""
    if style not in PROMPT_STYLES:
        raise ConfigError(f"prompt style '{style}' is not one of {', '.join(PROMPT_STYLES)}")
    scratch, update = PROMPT_STYLES[style]
    return ProfilePrompt(scratch, **budgets), UpdatePrompt(update, **budgets)
