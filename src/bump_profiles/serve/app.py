"""The HTTP API: interactions in, versioned profiles out, refresh jobs in the background.

Every route but ``/health`` and the docs needs ``Authorization: Bearer <token>`` unless the service
was started without auth (loopback only); the check runs before any body is read. Every list is
paged and every response bounded. Errors are JSON: ``{"error": {"code", "message"}}``, a 500 too
(its details go to the log only).
"""

from __future__ import annotations

import logging
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from bump_profiles.data.schema import MAX_CHARS
from bump_profiles.profiles.refresh import Refresher
from bump_profiles.serve.guards import BodyLimit, Gate, RateLimiter
from bump_profiles.serve.jobs import JobRunner
from bump_profiles.store import Job, NewInteraction, ProfileStore, StoredProfile

log = logging.getLogger(__name__)

USER_ID = r"^[A-Za-z0-9_.:@-]{1,200}$"
MAX_PAGE = 1000  # rows in one page of any list
UserId = Annotated[str, Path(pattern=USER_ID, description="a user id: letters, digits and _.:@- (1-200)")]


@dataclass
class ServeSettings:
    """Limits and auth of one service (the CLI fills it from flags)."""

    token: str | None  # None: no auth (the CLI allows it on a loopback address only)
    max_batch: int = 1000  # interactions per batch request
    max_body_bytes: int = 4_000_000
    rate: float = 200.0  # requests per second per client (token bucket), 0 = unlimited
    burst: int = 400
    max_refresh_users: int = 100_000  # users in one refresh job (POST /v1/refresh pages past it)
    replica: str = field(default_factory=socket.gethostname)  # owner of this service's jobs (one per replica)
    heartbeat_s: float = 60.0  # how often this replica marks its unfinished jobs alive
    stale_after_s: float = 600.0  # another replica's unfinished jobs silent this long are interrupted at start-up


class InteractionIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_CHARS)
    timestamp: str | None = Field(default=None, max_length=64, description="ISO 8601 or Unix seconds")
    id: str | None = Field(default=None, max_length=200, description="client id: sending it again stores nothing new")
    meta: dict[str, Any] = Field(default_factory=dict)


class UserInteractionIn(InteractionIn):
    user_id: str = Field(pattern=USER_ID)


class BatchIn(BaseModel):
    interactions: list[UserInteractionIn] = Field(min_length=1)


class StoredOut(BaseModel):
    seqs: list[int]


class InteractionOut(BaseModel):
    seq: int
    text: str
    timestamp: str | None
    id: str | None
    meta: dict[str, Any]
    created_at: datetime


class ProfileOut(BaseModel):
    user_id: str
    version: int
    profile: str
    generator: str
    mode: str
    previous_version: int | None
    through_seq: int
    source_seqs: list[int]
    prompt_tokens: int | None
    created_at: datetime


class RefreshIn(BaseModel):
    min_new: int = Field(default=1, ge=1, description="stale when at least this many interactions are newer than the profile")
    max_age_s: float | None = Field(default=None, gt=0, description="or when the profile is older than this (with any newer interaction)")
    limit: int | None = Field(default=None, ge=1, description="at most this many users in the job (default and cap: "
                              "the service's --max-refresh-users); more_stale says whether more are left")


class JobOut(BaseModel):
    id: str
    status: str
    total: int
    done: int
    failed: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    more_stale: bool | None = Field(default=None, description="POST /v1/refresh: more stale users are left than "
                                    "this job took (POST again, e.g. once it is done)")


def _profile_out(p: StoredProfile) -> ProfileOut:
    return ProfileOut(user_id=p.user_id, version=p.version, profile=p.text, generator=p.generator, mode=p.mode,
                      previous_version=p.previous_version, through_seq=p.through_seq, source_seqs=p.source_seqs,
                      prompt_tokens=p.prompt_tokens, created_at=p.created_at)


def _job_out(j: Job, more_stale: bool | None = None) -> JobOut:
    return JobOut(id=j.id, status=j.status, total=j.total, done=j.done, failed=j.failed, error=j.error,
                  created_at=j.created_at, updated_at=j.updated_at, more_stale=more_stale)


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status,
                        headers={"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None)


def create_app(store: ProfileStore, refresher: Refresher, settings: ServeSettings) -> FastAPI:
    """The service over ``store``; refresh jobs run ``refresher`` in a background thread."""
    runner = JobRunner(store, refresher, owner=settings.replica, heartbeat_s=settings.heartbeat_s,
                       stale_after_s=settings.stale_after_s)
    limiter = RateLimiter(settings.rate, settings.burst)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        runner.start()
        yield
        runner.stop()

    app = FastAPI(title="bump-profiles", description=__doc__, lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Gate, token=settings.token, limiter=limiter)  # added last: runs first, before the body

    @app.exception_handler(Exception)
    async def internal(req: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", req.method, req.url.path, exc_info=exc)
        return _error(500, "internal", "internal error (details in the service log)")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "payload_too_large", 429: "rate_limited"}
        resp = _error(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        first = problems[0] if problems else {"where": "?", "problem": "invalid"}
        return _error(422, "invalid_input", f"{first['where']}: {first['problem']}", problems=problems[:20])

    @app.get("/health", summary="liveness (no auth; says nothing about the data or the generator)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/users/{user_id}/interactions", status_code=201, response_model=StoredOut,
              summary="add one interaction of a user")
    def add_one(user_id: UserId, item: InteractionIn) -> StoredOut:
        return StoredOut(seqs=store.add_interactions(user_id, [_new(item)]))

    @app.post("/v1/interactions", status_code=201, response_model=StoredOut,
              summary="add a batch of interactions of any users, in one transaction")
    def add_batch(batch: BatchIn) -> StoredOut:
        if len(batch.interactions) > settings.max_batch:
            raise HTTPException(413, f"batch of {len(batch.interactions)} interactions; at most {settings.max_batch}")
        return StoredOut(seqs=store.add_batch([(it.user_id, _new(it)) for it in batch.interactions]))

    @app.get("/v1/users/{user_id}/interactions", response_model=list[InteractionOut],
             summary="a page of a user's interactions, oldest first, after a seq")
    def list_interactions(user_id: UserId, after_seq: Annotated[int, Query(ge=0)] = 0,
                          limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE) -> list[InteractionOut]:
        _known(store, user_id)
        return [InteractionOut(seq=i.seq, text=i.text, timestamp=i.timestamp, id=i.external_id, meta=i.meta,
                               created_at=i.created_at) for i in store.interactions(user_id, after_seq=after_seq, limit=limit)]

    @app.get("/v1/users/{user_id}/profile", response_model=ProfileOut,
             summary="the user's current profile with its version and provenance")
    def current(user_id: UserId) -> ProfileOut:
        _known(store, user_id)
        profile = store.current_profile(user_id)
        if profile is None:
            raise HTTPException(404, f"user '{user_id}' has no profile yet: POST /v1/users/{user_id}/refresh")
        return _profile_out(profile)

    @app.get("/v1/users/{user_id}/profiles", response_model=list[ProfileOut],
             summary="a page of the user's profile versions, oldest first, after a version")
    def history(user_id: UserId, after_version: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> list[ProfileOut]:
        _known(store, user_id)
        return [_profile_out(p) for p in store.profile_history(user_id, after_version=after_version, limit=limit)]

    @app.post("/v1/users/{user_id}/refresh", status_code=202, response_model=JobOut,
              summary="refresh one user's profile in the background (the pending job if one will already)")
    def refresh_one(user_id: UserId) -> JobOut:
        _known(store, user_id)
        pending = runner.job_of(user_id)
        found = store.job(pending) if pending is not None else None
        return _job_out(found if found is not None else runner.submit([user_id]))

    @app.post("/v1/refresh", status_code=202, response_model=JobOut,
              summary="refresh users whose profile is missing or stale (not already pending), in the background")
    def refresh_stale(body: RefreshIn | None = None) -> JobOut:
        body = body or RefreshIn()
        limit = min(body.limit or settings.max_refresh_users, settings.max_refresh_users)
        users: list[str] = []
        after: str | None = None
        while len(users) <= limit:  # page through stale users by id, leaving out those already pending here
            page = store.stale_users(min_new=body.min_new, max_age_s=body.max_age_s, after_user=after, limit=MAX_PAGE)
            users += [u for u in page if runner.job_of(u) is None][: limit + 1 - len(users)]
            if len(page) < MAX_PAGE:
                break
            after = page[-1]
        more = len(users) > limit  # one past the limit was found: more are left for the next request
        return _job_out(runner.submit(users[:limit]), more_stale=more)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, summary="a refresh job's progress")
    def job(job_id: Annotated[str, Path(max_length=64)]) -> JobOut:
        found = store.job(job_id)
        if found is None:
            raise HTTPException(404, f"no job '{job_id}'")
        return _job_out(found)

    return app


def _new(item: InteractionIn) -> NewInteraction:
    return NewInteraction(text=item.text, timestamp=item.timestamp, external_id=item.id, meta=item.meta)


def _known(store: ProfileStore, user_id: str) -> None:
    if not store.user_exists(user_id):
        raise HTTPException(404, f"no user '{user_id}'")
