"""The `outcry` command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings, get_settings
from app.core.db import engine_for, session_factory, session_scope
from app.core.errors import OutcryError, validation_fields

cli = typer.Typer(help="Outcry: protest letters and faxes, delivered.", no_args_is_help=True)
db_cli = typer.Typer(help="The database.", no_args_is_help=True)
appeal_cli = typer.Typer(help="Appeals.", no_args_is_help=True)
organiser_cli = typer.Typer(help="Organiser accounts.", no_args_is_help=True)
token_cli = typer.Typer(help="API tokens.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(appeal_cli, name="appeal")
cli.add_typer(organiser_cli, name="organiser")
cli.add_typer(token_cli, name="token")

HostOpt = Annotated[str, typer.Option(help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        envvar="OUTCRY_ORGANISER_PASSWORD",
        help="At least 12 characters; asked for when not given.",
        show_default=False,
    ),
]
# Tries at typing a long enough password before the command gives up.
PASSWORD_TRIES = 3


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        for field, why in validation_fields(list(exc.errors())).items():
            typer.echo(f"error: OUTCRY_{field.upper()}: {why}", err=True)
        raise typer.Exit(2) from exc


def _sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the configured database (one engine per process, shared by commands)."""
    return session_factory(engine_for(settings.database_url))


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One transaction of a command: committed when the block ends, rolled back on error."""
    with session_scope(_sessions(settings)) as session:
        yield session


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _new_password(given: str | None) -> str:
    """The new password as given, or typed twice; a too short one is said at once, before
    it is typed a second time."""
    from app.organisers.service import password_problem

    if given is not None:
        problem = password_problem(given)
        if problem:
            raise _fail(f"the password {problem}")
        return given
    for _ in range(PASSWORD_TRIES):
        password: str = typer.prompt("Password", hide_input=True)
        problem = password_problem(password)
        if problem is None:
            break
        typer.echo(f"error: the password {problem}; please try again", err=True)
    else:
        raise _fail(f"no password of at least {_password_min()} characters was given")
    again: str = typer.prompt("Repeat for confirmation", hide_input=True)
    if again != password:
        raise _fail("the two passwords are not the same")
    return password


def _password_min() -> int:
    from app.core.security import PASSWORD_MIN

    return PASSWORD_MIN


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from app.core.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("database is up to date")


def _import(path: Path) -> tuple[str, bool]:
    from app.appeals import files, service
    from app.appeals.schemas import AppealIn
    from app.audit import service as audit
    from app.core import paths

    settings = _settings()
    try:
        raw = files.read(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"{path}: {exc}") from exc
    except OutcryError as exc:
        raise _fail(f"{path}: {exc.detail}") from exc
    try:
        data = AppealIn.model_validate(raw)
    except ValidationError as exc:
        for field, why in validation_fields(list(exc.errors())).items():
            typer.echo(f"error: {path}: {field}: {why}", err=True)
        raise typer.Exit(1) from exc
    try:
        with _session(settings) as session:
            appeal, created = service.save_appeal(
                session, data=data, directory=paths.letter_templates_dir(), by=audit.COMMAND_LINE
            )
            return appeal.slug, created
    except OutcryError as exc:
        for field, why in (exc.fields or {"appeal": exc.detail}).items():
            typer.echo(f"error: {path}: {field}: {why}", err=True)
        raise typer.Exit(1) from exc


@appeal_cli.command("import")
def appeal_import(
    files: Annotated[list[Path], typer.Argument(help="Appeal YAML files.", exists=True)],
) -> None:
    """Create or update appeals from YAML files (matched by slug)."""
    for path in files:
        slug, created = _import(path)
        typer.echo(f"{'created' if created else 'updated'} {slug}")


@appeal_cli.command("list")
def appeal_list() -> None:
    """Every appeal with its status and counts."""
    from app.appeals import service

    settings = _settings()
    with _session(settings) as session:
        appeals = service.list_appeals(session, include_drafts=True)
        counted = service.counts(session, [a.id for a in appeals])
        for appeal in appeals:
            c = counted[appeal.id]
            typer.echo(
                f"{appeal.slug}\t{appeal.status}\tsigned={c.signed}\tsent={c.sent}\t"
                f"{settings.base_url}/a/{appeal.slug}"
            )


@organiser_cli.command("add")
def organiser_add(
    email: str,
    password: PasswordOpt = None,
    organisation: Annotated[
        str | None,
        typer.Option(help="Scope the account to this organisation (a union); default admin."),
    ] = None,
) -> None:
    """Add an organiser account: an admin, or scoped to one organisation."""
    from app.organisers import service

    settings = _settings()
    password = _new_password(password)
    try:
        with _session(settings) as session:
            org = service.ensure_organisation(session, slug=organisation) if organisation else None
            organiser = service.add_organiser(
                session, email=email, password=password, organisation=org
            )
            scope = f"for {org.slug}" if org else "(admin)"
            typer.echo(f"added organiser {organiser.email} {scope}")
    except OutcryError as exc:
        raise _fail(exc.detail) from exc


@token_cli.command("create")
def token_create(
    organisation: Annotated[
        str | None,
        typer.Option(help="Scope the token to this organisation (a union); default admin."),
    ] = None,
    name: Annotated[str, typer.Option(help="A note on what the token is for.")] = "",
) -> None:
    """Create an API token and print it (it is shown only this once)."""
    from app.audit import service as audit
    from app.organisers import service

    settings = _settings()
    with _session(settings) as session:
        org = service.ensure_organisation(session, slug=organisation) if organisation else None
        _token, raw = service.create_token(
            session, organisation=org, name=name, by=audit.COMMAND_LINE
        )
    typer.echo(raw)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"


@organiser_cli.command("list")
def organiser_list() -> None:
    """Every organiser account: address, scope (admin or the organisation), created."""
    from app.organisers import accounts

    settings = _settings()
    with _session(settings) as session:
        for organiser in accounts.list_organisers(session):
            scope = organiser.organisation.slug if organiser.organisation else "admin"
            typer.echo(f"{organiser.email}\t{scope}\tcreated {_when(organiser.created_at)}")


@organiser_cli.command("password")
def organiser_password(email: str, password: PasswordOpt = None) -> None:
    """Set an organiser's password (a reset), logging them out everywhere."""
    from app.organisers import accounts

    settings = _settings()
    password = _new_password(password)
    try:
        with _session(settings) as session:
            organiser = accounts.find_organiser(session, email)
            ended = accounts.set_password(session, organiser, password)
            typer.echo(f"password set for {organiser.email}; {ended} login session(s) ended")
    except OutcryError as exc:
        raise _fail(exc.detail) from exc


@organiser_cli.command("remove")
def organiser_remove(email: str) -> None:
    """Delete an organiser account; its login sessions end with it."""
    from app.audit import service as audit
    from app.organisers import accounts

    settings = _settings()
    try:
        with _session(settings) as session:
            organiser = accounts.find_organiser(session, email)
            accounts.remove_organiser(session, organiser, by=audit.COMMAND_LINE, last_admin_ok=True)
            typer.echo(f"removed organiser {organiser.email}")
    except OutcryError as exc:
        raise _fail(exc.detail) from exc


@token_cli.command("list")
def token_list() -> None:
    """Every API token: id, scope, name, created, last used (the tokens themselves are
    not kept, only their hashes)."""
    from app.organisers import accounts

    settings = _settings()
    with _session(settings) as session:
        for token in accounts.list_tokens(session):
            scope = token.organisation.slug if token.organisation else "admin"
            typer.echo(
                f"{token.id}\t{scope}\t{token.name or '-'}\tcreated {_when(token.created_at)}"
                f"\tlast used {_when(token.last_used_at)}"
            )


@token_cli.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `outcry token list`): it stops working at once."""
    from app.audit import service as audit
    from app.organisers import accounts

    settings = _settings()
    try:
        with _session(settings) as session:
            accounts.revoke_token(session, token_id, by=audit.COMMAND_LINE)
            typer.echo(f"revoked token {token_id}")
    except OutcryError as exc:
        raise _fail(exc.detail) from exc


@cli.command()
def purge(
    appeal: Annotated[str, typer.Option("--appeal", help="The closed appeal's slug.")],
    before: Annotated[
        str | None,
        typer.Option(help="Only letters signed before this day (2026-05-01)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Anonymise a closed appeal's letters now: names, e-mail addresses, cities, unions
    and messages are erased; counts by status, country, organisation and day stay."""
    from app.appeals import service as appeals
    from app.audit import service as audit
    from app.core import params
    from app.letters import privacy
    from app.models import utcnow

    settings = _settings()
    try:
        cutoff = params.parse_bound(before, field="before")
        with _session(settings) as session:
            found = appeals.get_appeal(session, appeal)
            if appeals.phase(found, utcnow()) != "closed":
                raise _fail(f"{appeal} is not closed: only a closed appeal can be purged")
            preview = privacy.purge_preview(session, appeal=found, before=cutoff)
        since = f" signed before {before}" if before else ""
        typer.echo(
            f"{appeal}: {preview.erased} letters{since} would lose their supporters' names, "
            f"e-mail addresses, cities, unions and messages; every count stays."
        )
        if preview.unfinished:
            typer.echo(f"{preview.unfinished} letters still on their way are left as they are.")
        if not preview.erased:
            return
        if not yes and not typer.confirm("Erase them now? This cannot be undone"):
            raise _fail("nothing erased")
        with _session(settings) as session:
            found = appeals.get_appeal(session, appeal)
            done = privacy.purge_appeal(
                session, appeal=found, now=utcnow(), before=cutoff, by=audit.COMMAND_LINE
            )
    except OutcryError as exc:
        raise _fail(exc.detail) from exc
    typer.echo(f"purged {done.erased} letters of {appeal}; {done.unfinished} left on their way")


def _served_settings(host: str, port: int) -> Settings:
    """The settings for serving on host:port: links in e-mails follow the port unless
    OUTCRY_BASE_URL says where the site is."""
    settings = _settings()
    if "base_url" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"base_url": f"http://{_url_host(host)}:{port}"})


def _url_host(host: str) -> str:
    """How a browser on this machine reaches a server listening on `host`."""
    if host in ("", "0.0.0.0"):  # noqa: S104  reads the address, binds nothing
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _check_port(host: str, port: int) -> None:
    """Fail plainly, before anything is printed, if host:port cannot be listened on."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise _fail(f"cannot listen on {host!r}: no such address on this machine") from exc
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn does, so a port left in TIME_WAIT by the last run counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                reason = (
                    f"port {port} on {host} is already in use (is Outcry running already?). "
                    f"Stop what uses it, or choose another port: --port {port + 1}"
                )
            elif exc.errno == errno.EACCES:
                reason = f"port {port} needs more privileges; choose a port above 1023"
            elif exc.errno == errno.EADDRNOTAVAIL:
                reason = f"this machine has no address {host}"
            else:
                reason = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            raise _fail(reason) from exc


def _warn_unsent_faxes(settings: Settings) -> None:
    """Say so at start when faxes are written to a folder instead of sent."""
    from app.delivery import faxes

    warning = faxes.unsent_warning(settings)
    if warning:
        typer.echo(f"warning: {warning}", err=True)


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import os

    from app import server
    from app.core.migrate import upgrade

    upgrade(settings.database_url)
    workers = workers or os.cpu_count() or 1
    mode = "embedded delivery" if settings.embedded else f"broker {settings.broker_url}"
    target = "SMTP" if settings.smtp_url else f"outbox folder {settings.outbox_dir.resolve()}"
    processes = f"{workers} web processes, " if workers > 1 else ""
    typer.echo(f"Outcry at {settings.base_url}/ ({processes}{mode}, mail to {target})")
    _warn_unsent_faxes(settings)
    # Each web process reads its settings from the environment: hand it the base URL
    # worked out here (links follow --port unless OUTCRY_BASE_URL was set).
    os.environ["OUTCRY_BASE_URL"] = settings.base_url
    get_settings.cache_clear()  # this process serves too when workers == 1
    server.run(host=host, port=port, workers=workers)


WorkersOpt = Annotated[
    int,
    typer.Option(
        min=0,
        envvar="OUTCRY_WEB_WORKERS",
        help="Web processes sharing the port (0: one per CPU core).",
    ),
]


@cli.command()
def serve(host: HostOpt = "127.0.0.1", port: PortOpt = 8000, workers: WorkersOpt = 1) -> None:
    """Run the web app; upgrades the database; without a broker, delivers from a process of
    its own beside the web processes."""
    _check_port(host, port)
    _serve(_served_settings(host, port), host, port, workers)


# The organiser login `outcry demo` makes, only on a database with no other organiser.
DEMO_ORGANISER = "demo@example.org"


def _demo_login(settings: Settings) -> None:
    """Show a newcomer the organisers' side: on a database without organisers of its own,
    a demo admin login with a new random password, printed this once; else the command."""
    from sqlalchemy import func, select

    from app.core import security
    from app.models import Organiser
    from app.organisers import accounts
    from app.organisers import service as organisers

    login = f"{settings.base_url}/login"
    with _session(settings) as session:
        others = session.scalar(
            select(func.count()).select_from(Organiser).where(Organiser.email != DEMO_ORGANISER)
        )
        if others:
            typer.echo(f"organisers log in at {login}")
            return
        password = security.new_token(12)
        existing = session.scalar(select(Organiser).where(Organiser.email == DEMO_ORGANISER))
        if existing is None:
            organisers.add_organiser(session, email=DEMO_ORGANISER, password=password)
        else:
            accounts.set_password(session, existing, password)
    typer.echo(
        f"organisers' side: {login} as {DEMO_ORGANISER}, password {password} "
        "(a new one each time the demo starts; add your own with `outcry organiser add`)"
    )


@cli.command()
def demo(host: HostOpt = "127.0.0.1", port: PortOpt = 8000, workers: WorkersOpt = 1) -> None:
    """Import the demo appeals, print their URLs and an organiser login, and serve."""
    from app.core import paths
    from app.core.migrate import upgrade

    _check_port(host, port)
    settings = _served_settings(host, port)
    upgrade(settings.database_url)
    for path in sorted(paths.demo_dir().glob("*.yaml")):
        slug, _ = _import(path)
        typer.echo(f"demo appeal: {settings.base_url}/a/{slug}")
    _demo_login(settings)
    _serve(settings, host, port, workers)


class InboundProtocol(StrEnum):
    lmtp = "lmtp"
    smtp = "smtp"
    imap = "imap"


@cli.command()
def inbound(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8024,
    protocol: Annotated[
        InboundProtocol,
        typer.Option(help="lmtp or smtp: listen for the MTA; imap: read OUTCRY_IMAP_URL."),
    ] = InboundProtocol.lmtp,
) -> None:
    """Take bounces and replies: from the site's MTA over LMTP (or SMTP), or from a mailbox."""
    import asyncio
    import logging

    from app.delivery.dispatch import CeleryDispatcher, Dispatcher, WakeUp
    from app.delivery.inbound import imap, listener

    settings = _settings()
    if not settings.bounce_domain:
        raise _fail("OUTCRY_BOUNCE_DOMAIN is not set (e.g. bounces.example.org)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO: the peers' addresses, not news.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    dispatcher: Dispatcher = (
        CeleryDispatcher(settings.broker_url, batch=settings.send_batch)
        if settings.broker_url
        else WakeUp()  # `outcry serve`'s embedded loop finds the notices at its next sweep
    )
    receiver = listener.Inbound(_sessions(settings), settings, dispatcher)
    if protocol is InboundProtocol.imap:
        config = settings.imap
        if config is None:
            raise _fail("OUTCRY_IMAP_URL is not set (e.g. imaps://user:password@host/INBOX)")
        typer.echo(f"Outcry inbound: reading {config.mailbox} at {config.host}:{config.port}")
        imap.run(receiver, config, interval=settings.imap_poll_seconds)
        return
    typer.echo(f"Outcry inbound: {protocol.value.upper()} on {host}:{port}")
    try:
        asyncio.run(listener.serve(receiver, host=host, port=port, protocol=protocol.value))
    except KeyboardInterrupt:
        pass


def _celery_argv(*args: str) -> None:
    settings = _settings()
    if not settings.broker_url:
        raise _fail("OUTCRY_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    from app.delivery.celery_app import celery_app

    celery_app.start(argv=list(args))


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    beat: Annotated[bool, typer.Option(help="Also run the sweeper (Celery beat) here.")] = False,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run a Celery worker that delivers letters."""
    _warn_unsent_faxes(_settings())
    args = ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    if beat:
        args.append("--beat")
    _celery_argv(*args)


@cli.command("beat")
def beat_command(
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run the sweeper schedule (Celery beat); one per deployment."""
    _celery_argv("beat", f"--loglevel={loglevel}")


def main() -> None:
    cli(prog_name="outcry")


if __name__ == "__main__":
    main()
