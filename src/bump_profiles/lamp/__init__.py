"""LaMP evaluation: task specs, official metrics, retrieval baselines, readers and the runner."""

from bump_profiles.lamp.metrics import score
from bump_profiles.lamp.tasks import TASKS, TaskSpec, get_task

__all__ = ["TASKS", "TaskSpec", "get_task", "score"]
