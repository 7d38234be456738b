"""TRL reward functions of a batch of profiles: :mod:`~bump_profiles.rewards.bump` (BUMP, label-free)
and :mod:`~bump_profiles.rewards.task` (the labeled reader-likelihood comparator), with what they
share in :mod:`~bump_profiles.rewards.rows`."""
