"""create_app(): settings, database, delivery, routers and the one error handler."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.appeals.routes import router as appeals_router
from app.core.admission import Admission
from app.core.config import Settings, get_settings
from app.core.db import POOL_RESERVE, engine_for, session_factory
from app.core.errors import install_handlers
from app.core.limits import BodySizeLimit, RefuseNul
from app.delivery import transports
from app.delivery.deliverer import Deliverer
from app.delivery.dispatch import Batching, CeleryDispatcher, Dispatcher, WakeUp
from app.delivery.embedded import EmbeddedLoop
from app.delivery.inbound import webhooks
from app.delivery.inbound.routes import router as webhooks_router
from app.delivery.routes import router as delivery_router
from app.documents.routes import router as documents_router
from app.letters import privacy
from app.letters.routes import router as letters_router
from app.ops.routes import registry_for
from app.ops.routes import router as ops_router
from app.organisers import account_pages, audit_pages, editor, invitation_pages
from app.organisers import pages as organiser_pages
from app.organisers.routes import router as organisers_router
from app.web import pages
from app.web.pages import STATIC_DIR

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, deliver_in_process: bool | None = None
) -> FastAPI:
    """The web app. Without a broker it also runs the embedded delivery loop while it serves
    (unless deliver_in_process=False, as tests that drive delivery themselves ask)."""
    settings = settings or get_settings()
    # A connection for every request admitted at once, and a few for the rest (db.py).
    # No pre-ping on this busy path: see make_engine().
    pool_size = settings.request_concurrency + POOL_RESERVE
    engine = engine_for(settings.database_url, pool_size=pool_size, pre_ping=False)
    sessions = session_factory(engine)
    embedded = settings.embedded if deliver_in_process is None else deliver_in_process

    dispatcher: Dispatcher
    batching: Batching | None = None
    loop: EmbeddedLoop | None = None
    if settings.broker_url:
        # A request only leaves its ids with Batching; its thread talks to Redis.
        batching = Batching(
            CeleryDispatcher(settings.broker_url, batch=settings.send_batch),
            gather=settings.send_batch,
        )
        dispatcher = batching
    else:
        wake = WakeUp()
        dispatcher = wake
        if embedded:
            loop = EmbeddedLoop(
                _deliverer(settings, sessions), wake, interval=settings.embedded_poll_interval
            )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # More worker threads than admitted requests, so an admitted request never waits
        # for a thread held by one that waits for it (admission.py).
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, settings.request_concurrency + 16)
        if loop is not None:
            loop.start()
            log.info("embedded delivery started")
        try:
            yield
        finally:
            if loop is not None:
                loop.stop()
            if batching is not None:
                # Hands over the ids still queued; bounded, since Redis is asked briefly.
                await anyio.to_thread.run_sync(batching.close)

    app = FastAPI(
        title="Outcry",
        summary="Protest letters and faxes, delivered.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.admission = Admission(
        settings.request_concurrency, wait=settings.request_queue_seconds
    )
    app.state.dispatcher = dispatcher
    app.state.metrics = registry_for(sessions)
    app.state.sns_fetch = webhooks.fetch_sns  # SNS certificates and subscription links
    install_handlers(app, html=organiser_pages.error_page)
    # First: a request's route is found by trying each in turn, and signing is the one a
    # crowd calls (after the 15 routes that were before it, 17 µs more; issue 10). No
    # other route takes any of its paths with its methods: each request finds the route
    # it found before.
    app.include_router(letters_router)
    app.include_router(ops_router)
    app.include_router(appeals_router)
    app.include_router(documents_router)
    app.include_router(delivery_router)
    app.include_router(organisers_router)
    app.include_router(webhooks_router)
    app.include_router(pages.router)
    # Before the organiser pages: `/dashboard/{slug}` would otherwise take /dashboard/account.
    app.include_router(account_pages.router)
    # Before the dashboard's /dashboard/{slug} pages, whose slug would take "audit".
    app.include_router(editor.router)
    app.include_router(audit_pages.router)
    app.include_router(invitation_pages.router)
    app.include_router(organiser_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RefuseNul)
    # Outermost: the client's address is settled before anything keys a limit on it.
    # With no trusted proxies, X-Forwarded-For is ignored and the peer is the client.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def _deliverer(settings: Settings, sessions: sessionmaker[Session]) -> Deliverer:
    return Deliverer(sessions, transports.make_transport(settings), settings, upkeep=privacy.upkeep)


def app_from_env() -> FastAPI:
    """The app with the settings of the environment: what `outcry serve` runs in each
    web process. It never delivers itself: without a broker, `outcry serve` runs the
    embedded loop in a process of its own beside it (deliver_beside_server)."""
    return create_app(deliver_in_process=False)


def deliver_beside_server(parent: int) -> None:
    """The embedded loop in `outcry serve`'s delivery process (embedded.DeliveryProcess),
    until SIGTERM or until the process `parent` that started it is gone."""
    # Ctrl-C reaches the whole process group: the server stops this process itself,
    # once it has stopped taking requests.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopped: list[int] = []
    # Only a note here: the handler runs between the main thread's steps, whatever it holds.
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopped.append(signum))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    settings = get_settings()
    sessions = session_factory(engine_for(settings.database_url))
    loop = EmbeddedLoop(
        _deliverer(settings, sessions), WakeUp(), interval=settings.embedded_poll_interval
    )
    loop.start()
    pid = os.getpid()
    log.info(
        "delivery process %s: delivering (embedded, polling every %s s)",
        pid,
        settings.embedded_poll_interval,
    )
    while not stopped and os.getppid() == parent:
        time.sleep(0.2)
    log.info(
        "delivery process %s: %s",
        pid,
        "stopping" if stopped else "the server is gone; stopping",
    )
    loop.stop()
