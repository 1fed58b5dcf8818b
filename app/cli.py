"""The `outcry` command."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError

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
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="OUTCRY_ORGANISER_PASSWORD",
        help="At least 12 characters; asked for when not given.",
    ),
]


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        for field, why in validation_fields(list(exc.errors())).items():
            typer.echo(f"error: OUTCRY_{field.upper()}: {why}", err=True)
        raise typer.Exit(2) from exc


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from app.core.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("database is up to date")


def _import(path: Path) -> tuple[str, bool]:
    from app.appeals import service
    from app.appeals.schemas import AppealIn
    from app.core import paths

    settings = _settings()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise _fail(f"{path}: expected a mapping of appeal fields")
    try:
        data = AppealIn.model_validate(raw)
    except ValidationError as exc:
        for field, why in validation_fields(list(exc.errors())).items():
            typer.echo(f"error: {path}: {field}: {why}", err=True)
        raise typer.Exit(1) from exc
    sessions = session_factory(engine_for(settings.database_url))
    try:
        with session_scope(sessions) as session:
            appeal, created = service.save_appeal(
                session, data=data, directory=paths.letter_templates_dir()
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
    with session_scope(session_factory(engine_for(settings.database_url))) as session:
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
    password: PasswordOpt,
    organisation: Annotated[
        str | None,
        typer.Option(help="Scope the account to this organisation (a union); default admin."),
    ] = None,
) -> None:
    """Add an organiser account: an admin, or scoped to one organisation."""
    from app.organisers import service

    settings = _settings()
    try:
        with session_scope(session_factory(engine_for(settings.database_url))) as session:
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
    from app.organisers import service

    settings = _settings()
    with session_scope(session_factory(engine_for(settings.database_url))) as session:
        org = service.ensure_organisation(session, slug=organisation) if organisation else None
        _token, raw = service.create_token(session, organisation=org, name=name)
    typer.echo(raw)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"


@organiser_cli.command("list")
def organiser_list() -> None:
    """Every organiser account: address, scope (admin or the organisation), created."""
    from app.organisers import accounts

    settings = _settings()
    with session_scope(session_factory(engine_for(settings.database_url))) as session:
        for organiser in accounts.list_organisers(session):
            scope = organiser.organisation.slug if organiser.organisation else "admin"
            typer.echo(f"{organiser.email}\t{scope}\tcreated {_when(organiser.created_at)}")


@organiser_cli.command("password")
def organiser_password(email: str, password: PasswordOpt) -> None:
    """Set an organiser's password (a reset), logging them out everywhere."""
    from app.organisers import accounts

    settings = _settings()
    try:
        with session_scope(session_factory(engine_for(settings.database_url))) as session:
            organiser = accounts.find_organiser(session, email)
            ended = accounts.set_password(session, organiser, password)
            typer.echo(f"password set for {organiser.email}; {ended} login session(s) ended")
    except OutcryError as exc:
        raise _fail(exc.detail) from exc


@organiser_cli.command("remove")
def organiser_remove(email: str) -> None:
    """Delete an organiser account; its login sessions end with it."""
    from app.organisers import accounts

    settings = _settings()
    try:
        with session_scope(session_factory(engine_for(settings.database_url))) as session:
            organiser = accounts.find_organiser(session, email)
            accounts.remove_organiser(session, organiser)
            typer.echo(f"removed organiser {organiser.email}")
    except OutcryError as exc:
        raise _fail(exc.detail) from exc


@token_cli.command("list")
def token_list() -> None:
    """Every API token: id, scope, name, created, last used (the tokens themselves are
    not kept, only their hashes)."""
    from app.organisers import accounts

    settings = _settings()
    with session_scope(session_factory(engine_for(settings.database_url))) as session:
        for token in accounts.list_tokens(session):
            scope = token.organisation.slug if token.organisation else "admin"
            typer.echo(
                f"{token.id}\t{scope}\t{token.name or '-'}\tcreated {_when(token.created_at)}"
                f"\tlast used {_when(token.last_used_at)}"
            )


@token_cli.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by its id (see `outcry token list`): it stops working at once."""
    from app.organisers import accounts

    settings = _settings()
    try:
        with session_scope(session_factory(engine_for(settings.database_url))) as session:
            accounts.revoke_token(session, token_id)
            typer.echo(f"revoked token {token_id}")
    except OutcryError as exc:
        raise _fail(exc.detail) from exc


def _serve(host: str, port: int) -> None:
    import uvicorn

    from app.core.migrate import upgrade
    from app.main import create_app

    settings = _settings()
    upgrade(settings.database_url)
    mode = "embedded delivery" if settings.embedded else f"broker {settings.broker_url}"
    target = "SMTP" if settings.smtp_url else f"outbox folder {settings.outbox_dir.resolve()}"
    typer.echo(f"Outcry at http://{host}:{port}/ ({mode}, mail to {target})")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@cli.command()
def serve(host: HostOpt = "127.0.0.1", port: PortOpt = 8000) -> None:
    """Run the web app; upgrades the database; delivers in-process when no broker is set."""
    _serve(host, port)


@cli.command()
def demo(host: HostOpt = "127.0.0.1", port: PortOpt = 8000) -> None:
    """Import the demo appeals, print their URLs, and serve."""
    from app.core import paths
    from app.core.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    for path in sorted(paths.demo_dir().glob("*.yaml")):
        slug, _ = _import(path)
        typer.echo(f"demo appeal: http://{host}:{port}/a/{slug}")
    _serve(host, port)


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
    receiver = listener.Inbound(
        session_factory(engine_for(settings.database_url)), settings, dispatcher
    )
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
    from workers.celery_app import celery_app

    celery_app.start(argv=list(args))


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    beat: Annotated[bool, typer.Option(help="Also run the sweeper (Celery beat) here.")] = False,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run a Celery worker that delivers letters."""
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
