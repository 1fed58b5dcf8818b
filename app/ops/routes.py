"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.core import auth, security
from app.core.db import SessionDep
from app.core.deps import SettingsDep
from app.core.errors import Unauthorized, error_responses
from app.delivery.inbound.service import DROP_REASONS
from app.models import (
    Bounce,
    Delivery,
    DeliveryStatus,
    InboundDropped,
    Letter,
    LetterStatus,
    Reply,
    ReplyKind,
    utcnow,
)

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]


_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Readiness, "description": "The database or the broker does not answer."}
}


@router.get("/readyz", response_model=Readiness, responses=_NOT_READY)
def readyz(request: Request) -> JSONResponse:
    """The database (and the broker, when one is configured) answer."""
    checks: dict[str, str] = {}
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    dispatcher = request.app.state.dispatcher
    if hasattr(dispatcher, "ping"):
        checks["broker"] = "ok" if dispatcher.ping() else "error: no answer"
    else:
        checks["broker"] = "embedded"
    ready = all(v in ("ok", "embedded") for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


class OutboxCollector(Collector):
    """Counts read from the database at scrape time: right however many workers run."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        letters = GaugeMetricFamily("outcry_letters", "Letters by status", labels=["status"])
        deliveries = GaugeMetricFamily(
            "outcry_deliveries", "Deliveries by status", labels=["status"]
        )
        with self.sessions() as session:
            by_letter = dict(
                session.execute(select(Letter.status, func.count()).group_by(Letter.status)).all()
            )
            by_delivery = dict(
                session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)
                ).all()
            )
        for status in LetterStatus:
            letters.add_metric([status.value], by_letter.get(status, 0))
        for dstatus in DeliveryStatus:
            deliveries.add_metric([dstatus.value], by_delivery.get(dstatus, 0))
        yield letters
        yield deliveries
        yield from self._inbound()

    def _inbound(self) -> Iterator[GaugeMetricFamily]:
        """What came back: bounces hard and soft, replies human and automatic, and inbound
        messages dropped (forged or unknown return addresses, too large)."""
        dropped = GaugeMetricFamily(
            "outcry_inbound_dropped", "Inbound messages dropped, by reason", labels=["reason"]
        )
        bounces = GaugeMetricFamily("outcry_bounces", "Bounces by kind", labels=["kind"])
        replies = GaugeMetricFamily("outcry_replies", "Replies from targets", labels=["kind"])
        with self.sessions() as session:
            by_reason = dict(session.execute(select(InboundDropped.reason, InboundDropped.n)).all())
            by_bounce = dict(
                session.execute(
                    select(Bounce.permanent, func.count()).group_by(Bounce.permanent)
                ).all()
            )
            by_reply = dict(
                session.execute(select(Reply.kind, func.count()).group_by(Reply.kind)).all()
            )
        for reason in DROP_REASONS:
            dropped.add_metric([reason], by_reason.get(reason, 0))
        bounces.add_metric(["hard"], by_bounce.get(True, 0))
        bounces.add_metric(["soft"], by_bounce.get(False, 0))
        for kind in ReplyKind:
            replies.add_metric([kind.value], by_reply.get(kind, 0))
        yield dropped
        yield bounces
        yield replies


def registry_for(sessions: sessionmaker[Session]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(OutboxCollector(sessions))
    return registry


def metrics_reader(request: Request, session: SessionDep, settings: SettingsDep) -> None:
    """The caller bears OUTCRY_METRICS_TOKEN or an admin API token: 401 without a valid
    token, 403 for a union's."""
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized()
    if settings.metrics_token and security.same(raw.strip(), settings.metrics_token):
        return
    token = auth.authenticate(session, raw.strip(), now=utcnow())
    auth.check_admin(auth.token_principal(token))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 403)},
)
def metrics(request: Request, _reader: Annotated[None, Depends(metrics_reader)]) -> Response:
    """Prometheus metrics (Authorization: Bearer OUTCRY_METRICS_TOKEN, or an admin token)."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
