"""The ``reward.contrast`` config section: negatives beyond the batch (:mod:`bump_profiles.rewards.contrast`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bump_profiles.errors import ConfigError


@dataclass
class ContrastConfig:
    """A population bank of other training users' items (direction A) and a queue of other users'
    recent profiles (direction B). All 0: the batch's own users only, today's reward."""

    bank_users: int = field(default=0, metadata={"help": "population bank: other training users whose held-out items join "
                                                         "direction A's negatives at every call (0: off)"})
    hard_share: float = field(default=0.0, metadata={"help": "share of the bank's users that are the batch users' nearest "
                                                            "(history TF-IDF); the rest drawn at random (seeded)"})
    queue_size: int = field(default=0, metadata={"help": "queue of the most recent profiles of earlier calls, other users' "
                                                        "only, as extra negatives of direction B (0: off)"})

    def __post_init__(self) -> None:
        if self.bank_users < 0 or self.queue_size < 0:
            raise ConfigError("reward.contrast.bank_users and queue_size: 0 (off) or more")
        if not 0.0 <= self.hard_share <= 1.0 or (self.hard_share > 0 and self.bank_users == 0):
            raise ConfigError(f"reward.contrast.hard_share: a share in [0, 1] of a bank (bank_users > 0), got {self.hard_share}")
