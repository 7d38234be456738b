"""Refresh jobs run in one background thread, in batches of users; progress lives in the store.

A job is a list of users. The worker refreshes them ``batch_size`` at a time with one batched
generation call (:meth:`bump_profiles.profiles.refresh.Refresher.refresh_many`) and writes the job's
counters after every batch, so ``GET /v1/jobs/{id}`` shows progress. A user whose refresh
fails is counted in ``failed`` with the last error; the others go on. An error about the user (an
empty generation, a stale write) is shown on the job; anything else (a database, endpoint or model
failure) is logged with its traceback and shown only as "internal error", so SQL, URLs or paths
never reach a client.

Several replicas may share one database: each job records the replica that runs it (``owner``), a
heartbeat thread marks the replica's unfinished jobs alive every ``heartbeat_s`` seconds, and a
replica starting up interrupts only its own jobs left by its previous process, jobs with no owner,
and jobs whose replica has not been heard from in ``stale_after_s`` seconds. A user queued or running
in this replica is not queued again: a repeated refresh request adds only the users not pending.
"""

from __future__ import annotations

import logging
import queue
import threading

from bump_profiles.profiles.refresh import Refresher
from bump_profiles.store import Job, ProfileStore

log = logging.getLogger(__name__)

INTERNAL = "internal error (details in the service log)"


class JobRunner:
    def __init__(self, store: ProfileStore, refresher: Refresher, *, owner: str = "local",
                 heartbeat_s: float = 60.0, stale_after_s: float = 600.0, batch_size: int = 8):
        if stale_after_s <= 2 * heartbeat_s:
            raise ValueError("stale_after_s must be more than twice heartbeat_s, or live replicas look stale")
        self.store = store
        self.refresher = refresher
        self.batch_size = max(1, batch_size)  # users per generation call
        self.owner, self.heartbeat_s, self.stale_after_s = owner, heartbeat_s, stale_after_s
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._beat: threading.Thread | None = None
        self._stopping = threading.Event()
        self._pending: dict[str, str] = {}  # user -> id of the job that will refresh them (queued or running)
        self._lock = threading.Lock()

    def start(self) -> None:
        stale = self.store.interrupt_unfinished_jobs(self.owner, stale_after_s=self.stale_after_s)
        if stale:
            log.warning("marked %d refresh job(s) left unfinished (by this replica's previous run, or a replica "
                        "silent for %.0f s) as interrupted", stale, self.stale_after_s)
        self._thread = threading.Thread(target=self._work, name="refresh-jobs", daemon=True)
        self._thread.start()
        self._beat = threading.Thread(target=self._heartbeat, name="refresh-heartbeat", daemon=True)
        self._beat.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def job_of(self, user: str) -> str | None:
        """The id of the job of this replica that will refresh ``user`` (queued or running), if any."""
        with self._lock:
            return self._pending.get(user)

    def submit(self, users: list[str]) -> Job:
        """A job for those of ``users`` not already queued or running here (possibly none)."""
        with self._lock:
            fresh = [u for u in dict.fromkeys(users) if u not in self._pending]
            job = self.store.create_job(fresh, owner=self.owner)
            self._pending.update(dict.fromkeys(fresh, job.id))
        self._queue.put(job.id)
        return job

    def _heartbeat(self) -> None:
        while not self._stopping.wait(self.heartbeat_s):
            try:
                self.store.touch_jobs(self.owner)
            except Exception:  # noqa: BLE001 (the database is down: try again at the next beat)
                log.exception("could not mark this replica's jobs alive")

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                self._run(job_id)
            except Exception:  # noqa: BLE001 (the database itself failed: keep serving later jobs)
                log.exception("refresh job %s stopped", job_id)
                try:
                    self.store.update_job(job_id, status="failed", error=INTERNAL)
                except Exception:  # noqa: BLE001 (still down: the next start marks it interrupted)
                    log.exception("could not record the failure of job %s", job_id)
            finally:
                with self._lock:
                    self._pending = {u: j for u, j in self._pending.items() if j != job_id}

    def _run(self, job_id: str) -> None:
        job = self.store.job(job_id, with_users=True)
        if job is None:
            return
        self.store.update_job(job_id, status="running")
        done = failed = 0
        error: str | None = None
        for start in range(0, len(job.users), self.batch_size):  # one batched generation call per chunk
            chunk = job.users[start : start + self.batch_size]
            try:
                results: list = self.refresher.refresh_many(chunk)
            except Exception:  # noqa: BLE001 (a model, endpoint or database failure: logged with its traceback,
                log.exception("refresh of %d users failed", len(chunk))  # not shown; the worker must outlive it)
                failed += len(chunk)
                error = f"{chunk[-1]}: {INTERNAL}"
            else:
                for user_id, result in zip(chunk, results, strict=True):
                    if isinstance(result, Exception):  # about the user (empty generation, stale write): shown
                        failed += 1
                        error = f"{user_id}: {result}"
                        log.warning("refresh of %s failed: %s", user_id, result)
                    else:
                        done += 1
            with self._lock:
                for user_id in chunk:
                    self._pending.pop(user_id, None)
            self.store.update_job(job_id, done=done, failed=failed, error=error)
        self.store.update_job(job_id, status="done" if not failed else "failed")
