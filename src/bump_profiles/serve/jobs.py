"""Refresh jobs run in one background thread, in batches of users; progress lives in the store.

A job is a list of users. The worker refreshes them ``batch_size`` at a time with one batched
generation call (:meth:`bump_profiles.refresh.Refresher.refresh_many`) and writes the job's
counters after every batch, so ``GET /v1/jobs/{id}`` shows progress, and a job cut short
by a crash is found ``queued``/``running`` at the next start and marked ``interrupted``. A user whose
refresh fails is counted in ``failed`` with the last error; the others go on.
"""

from __future__ import annotations

import logging
import queue
import threading

from bump_profiles.refresh import Refresher
from bump_profiles.store import Job, ProfileStore

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, store: ProfileStore, refresher: Refresher, batch_size: int = 8):
        self.store = store
        self.refresher = refresher
        self.batch_size = max(1, batch_size)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        stale = self.store.interrupt_unfinished_jobs()
        if stale:
            log.warning("marked %d refresh job(s) left unfinished by a previous run as interrupted", stale)
        self._thread = threading.Thread(target=self._work, name="refresh-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def submit(self, users: list[str]) -> Job:
        job = self.store.create_job(users)
        self._queue.put(job.id)
        return job

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                self._run(job_id)
            except Exception as exc:  # noqa: BLE001 (the database itself failed: keep serving later jobs)
                log.exception("refresh job %s stopped", job_id)
                try:
                    self.store.update_job(job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
                except Exception:  # noqa: BLE001 (still down: the next start marks it interrupted)
                    log.exception("could not record the failure of job %s", job_id)

    def _run(self, job_id: str) -> None:
        job = self.store.job(job_id)
        if job is None:
            return
        self.store.update_job(job_id, status="running")
        done = failed = 0
        error: str | None = None
        for start in range(0, len(job.users), self.batch_size):  # one batched generation call per chunk
            chunk = job.users[start : start + self.batch_size]
            try:
                results: list = self.refresher.refresh_many(chunk)
            except Exception as exc:  # noqa: BLE001 (a model or database failure: recorded on the job with
                log.exception("refresh of %d users failed", len(chunk))  # its type; later jobs must not hang)
                results = [RuntimeError(f"{type(exc).__name__}: {exc}")] * len(chunk)
            for user_id, result in zip(chunk, results, strict=True):
                if isinstance(result, Exception):
                    failed += 1
                    error = f"{user_id}: {result}"
                    log.warning("refresh of %s failed: %s", user_id, result)
                else:
                    done += 1
            self.store.update_job(job_id, done=done, failed=failed, error=error)
        self.store.update_job(job_id, status="done" if not failed else "failed")
