"""The HTTP API: interactions in, versioned profiles out, refresh jobs in the background.

Every route but ``/health`` and the docs needs ``Authorization: Bearer <token>`` unless the service
was started without auth (loopback only). Errors are JSON: ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bump_profiles.data.schema import MAX_CHARS
from bump_profiles.refresh import Refresher
from bump_profiles.serve.guards import BodyLimit, RateLimiter, token_ok
from bump_profiles.serve.jobs import JobRunner
from bump_profiles.store import Job, NewInteraction, ProfileStore, StoredProfile

USER_ID = r"^[A-Za-z0-9_.:@-]{1,200}$"
UserId = Annotated[str, Path(pattern=USER_ID, description="a user id: letters, digits and _.:@- (1-200)")]


@dataclass
class ServeSettings:
    """Limits and auth of one service (the CLI fills it from flags)."""

    token: str | None  # None: no auth (the CLI allows it on a loopback address only)
    max_batch: int = 1000  # interactions per batch request
    max_body_bytes: int = 4_000_000
    rate: float = 200.0  # requests per second per client (token bucket), 0 = unlimited
    burst: int = 400
    max_refresh_users: int = 100_000  # users in one refresh job


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


class JobOut(BaseModel):
    id: str
    status: str
    total: int
    done: int
    failed: int
    error: str | None
    created_at: datetime
    updated_at: datetime


def _profile_out(p: StoredProfile) -> ProfileOut:
    return ProfileOut(user_id=p.user_id, version=p.version, profile=p.text, generator=p.generator, mode=p.mode,
                      previous_version=p.previous_version, through_seq=p.through_seq, source_seqs=p.source_seqs,
                      prompt_tokens=p.prompt_tokens, created_at=p.created_at)


def _job_out(j: Job) -> JobOut:
    return JobOut(id=j.id, status=j.status, total=j.total, done=j.done, failed=j.failed, error=j.error,
                  created_at=j.created_at, updated_at=j.updated_at)


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status,
                        headers={"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None)


def create_app(store: ProfileStore, refresher: Refresher, settings: ServeSettings) -> FastAPI:
    """The service over ``store``; refresh jobs run ``refresher`` in a background thread."""
    runner = JobRunner(store, refresher)
    limiter = RateLimiter(settings.rate, settings.burst)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        runner.start()
        yield
        runner.stop()

    app = FastAPI(title="bump-profiles", description=__doc__, lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    async def guard(request: Request) -> None:
        header = request.headers.get("authorization")
        ok = settings.token is None or token_ok(header, settings.token)
        address = request.client.host if request.client else "?"
        # a client is its token when it has the right one, else its address (so guessing is rate-limited too)
        wait = limiter.allow(f"token:{header}" if ok and header else f"address:{address}")
        if wait > 0:
            raise HTTPException(429, f"rate limit: {settings.rate:g} requests/s, retry in {wait:.2f} s",
                                headers={"Retry-After": str(max(1, round(wait)))})
        if not ok:
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(guard)]

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

    @app.post("/v1/users/{user_id}/interactions", dependencies=auth, status_code=201, response_model=StoredOut,
              summary="add one interaction of a user")
    def add_one(user_id: UserId, item: InteractionIn) -> StoredOut:
        return StoredOut(seqs=store.add_interactions(user_id, [_new(item)]))

    @app.post("/v1/interactions", dependencies=auth, status_code=201, response_model=StoredOut,
              summary="add a batch of interactions of any users, in one transaction")
    def add_batch(batch: BatchIn) -> StoredOut:
        if len(batch.interactions) > settings.max_batch:
            raise HTTPException(413, f"batch of {len(batch.interactions)} interactions; at most {settings.max_batch}")
        return StoredOut(seqs=store.add_batch([(it.user_id, _new(it)) for it in batch.interactions]))

    @app.get("/v1/users/{user_id}/interactions", dependencies=auth, response_model=list[InteractionOut],
             summary="a user's interactions, oldest first, after a seq")
    def list_interactions(user_id: UserId, after_seq: Annotated[int, Query(ge=0)] = 0,
                          limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[InteractionOut]:
        _known(store, user_id)
        return [InteractionOut(seq=i.seq, text=i.text, timestamp=i.timestamp, id=i.external_id, meta=i.meta,
                               created_at=i.created_at) for i in store.interactions(user_id, after_seq=after_seq, limit=limit)]

    @app.get("/v1/users/{user_id}/profile", dependencies=auth, response_model=ProfileOut,
             summary="the user's current profile with its version and provenance")
    def current(user_id: UserId) -> ProfileOut:
        _known(store, user_id)
        profile = store.current_profile(user_id)
        if profile is None:
            raise HTTPException(404, f"user '{user_id}' has no profile yet: POST /v1/users/{user_id}/refresh")
        return _profile_out(profile)

    @app.get("/v1/users/{user_id}/profiles", dependencies=auth, response_model=list[ProfileOut],
             summary="every version of the user's profile, oldest first")
    def history(user_id: UserId) -> list[ProfileOut]:
        _known(store, user_id)
        return [_profile_out(p) for p in store.profile_history(user_id)]

    @app.post("/v1/users/{user_id}/refresh", dependencies=auth, status_code=202, response_model=JobOut,
              summary="refresh one user's profile in the background")
    def refresh_one(user_id: UserId) -> JobOut:
        _known(store, user_id)
        return _job_out(runner.submit([user_id]))

    @app.post("/v1/refresh", dependencies=auth, status_code=202, response_model=JobOut,
              summary="refresh every user whose profile is missing or stale, in the background")
    async def refresh_stale(body: RefreshIn | None = None) -> JobOut:
        body = body or RefreshIn()
        users = await run_in_threadpool(store.stale_users, min_new=body.min_new, max_age_s=body.max_age_s)
        if len(users) > settings.max_refresh_users:
            raise HTTPException(413, f"{len(users)} stale users; at most {settings.max_refresh_users} per job")
        return _job_out(await run_in_threadpool(runner.submit, users))

    @app.get("/v1/jobs/{job_id}", dependencies=auth, response_model=JobOut, summary="a refresh job's progress")
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
