"""The one Settings object: every OUTCRY_* environment variable, validated at start-up."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SmtpConfig(BaseModel):
    """OUTCRY_SMTP_URL taken apart."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # smtps://: TLS from the first byte
    start_tls: bool = False  # smtp://…?starttls=true
    timeout: float = 30.0


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse `smtp://[user:pass@]host:port[?starttls=true]` or `smtps://…`."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("scheme must be smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("a host is required")
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls", "timeout"}
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}")
    tls = parts.scheme == "smtps"
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=tls,
        start_tls=query.get("starttls") in ("1", "true", "yes"),
        timeout=float(query.get("timeout", "30")),
    )


class ImapConfig(BaseModel):
    """OUTCRY_IMAP_URL taken apart."""

    host: str
    port: int
    username: str
    password: str
    mailbox: str = "INBOX"
    use_tls: bool = True  # imaps://
    start_tls: bool = False  # imap://…?starttls=true


def parse_imap_url(url: str) -> ImapConfig:
    """Parse `imaps://user:password@host[:port]/MAILBOX` or `imap://…[?starttls=true]`."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise ValueError("scheme must be imaps:// or imap://")
    if not parts.hostname or not parts.username or parts.password is None:
        raise ValueError("a host, a user name and a password are required")
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}")
    tls = parts.scheme == "imaps"
    return ImapConfig(
        host=parts.hostname,
        port=parts.port or (993 if tls else 143),
        username=unquote(parts.username),
        password=unquote(parts.password),
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
        use_tls=tls,
        start_tls=query.get("starttls") in ("1", "true", "yes"),
    )


class Settings(BaseSettings):
    """Configuration from the environment (prefix OUTCRY_); see DESIGN.md §4."""

    model_config = SettingsConfigDict(env_prefix="OUTCRY_", extra="ignore")

    database_url: str = "sqlite:///./outcry.db"
    broker_url: str = ""
    smtp_url: str = ""
    outbox_dir: Path = Path("./outbox")
    mail_from: str = "Outcry <letters@localhost>"
    fax_gateway: str = ""
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    # Where the generated key of the embedded default is kept between runs.
    secret_key_file: Path = Path("./.outcry-secret")

    # DNS lookups for supporters' addresses are off by default: they leak who signs
    # to the resolver and fail offline. Turn on where deliverability matters more.
    check_email_deliverability: bool = False
    confirmation_days: int = Field(default=7, ge=1, le=90)
    # How long the link in an invitation to an organiser account works.
    invitation_days: int = Field(default=3, ge=1, le=30)
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    # Signatures one client address may send an hour (0: no limit). Generous, because a
    # union meeting signs from one office; it stops a script from mailing confirmation
    # requests to thousands of strangers.
    sign_limit_per_hour: int = Field(default=200, ge=0)

    # Supporters at risk: keep little, forget on time.
    # Days after a letter is finished (sent, failed, rejected, expired, withdrawn) when
    # the supporter's e-mail address is erased; a keyed hash of it stays.
    forget_after_days: int = Field(default=30, ge=1)
    # Days after a never-confirmed letter expires when it is deleted: only its place in
    # the counts stays.
    delete_unconfirmed_after_days: int = Field(default=7, ge=0)
    # Confirmation e-mails one address may be sent a day (0: no limit), so the form
    # cannot mail-bomb an inbox; a supporter signing a few appeals stays well under it.
    confirmations_per_address_per_day: int = Field(default=10, ge=0)
    # The flood guard: past this many signatures of one appeal an hour from one network
    # (/24, /48) or one mail domain, further letters from it are held for moderation
    # (0: off). A union office signing at a meeting shares one network, a union's staff
    # one domain: held letters lose nothing, and the organisers release a group at once.
    flood_network_per_hour: int = Field(default=100, ge=0)
    flood_domain_per_hour: int = Field(default=200, ge=0)
    # Mail domains counted by network only, added to the big public providers
    # (app/letters/guard.py): comma-separated, e.g. "mail.example.kz,post.example.org".
    flood_shared_domains: str = ""
    # The signing form (HTML only) is refused as a bot's when sent sooner than this
    # after it was shown.
    form_min_seconds: float = Field(default=3.0, ge=0)
    # The bearer token Prometheus scrapes /metrics with. /metrics is never public: it
    # answers this token or an admin API token, nothing else (counts of letters by status
    # tell an adversary how a campaign is going).
    metrics_token: str = ""
    # Bounces and replies. With a bounce domain, each letter to a target goes out with
    # the envelope sender bounces+<token>@<domain> and (unless the supporter shares their
    # address) Reply-To replies+<token>@<domain>; `outcry inbound` takes what comes back.
    bounce_domain: str = ""
    # The largest inbound message taken (LMTP/SMTP DATA, an IMAP message): larger ones are
    # refused (552) or left alone in the mailbox.
    inbound_max_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    # `outcry inbound --protocol imap`: imaps://user:password@host[:993]/MAILBOX (or imap://
    # with ?starttls=true), read every imap_poll_seconds.
    imap_url: str = ""
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    # Relays that report bounces by webhook (each route answers 404 until configured):
    # Postmark's basic-auth credentials "user:password" (or a secret in the URL path);
    # Mailgun's webhook signing key; SendGrid's verification key (base64 DER or PEM of
    # its ECDSA public key); the SNS topic ARNs Amazon SES publishes to (comma-separated).
    postmark_webhook_auth: str = ""
    mailgun_signing_key: str = ""
    sendgrid_verification_key: str = ""
    ses_topic_arns: str = ""
    # Delivery tuning.
    # How long a delivery handed out (to a worker, or to the broker by a sweep) is left
    # alone before the sweeper hands it out again: longer than any one send can take.
    lease_seconds: int = Field(default=300, ge=5)
    sweep_interval: float = Field(default=30.0, gt=0)
    embedded_poll_interval: float = Field(default=0.25, gt=0)
    # SMTP connections per worker process, and so messages in flight at once.
    send_concurrency: int = Field(default=8, ge=1, le=200)
    # Delivery ids per task, claimed and recorded together in one transaction each.
    send_batch: int = Field(default=50, ge=1, le=1000)
    # The window over which an appeal's rate_limit counts (60: "per minute").
    rate_period_seconds: float = Field(default=60.0, gt=0)
    # Backoff between attempts: base·2^(n-1) with jitter, capped; 8 attempts span about a day.
    retry_base_seconds: float = Field(default=600.0, gt=0)
    retry_cap_seconds: float = Field(default=8 * 3600.0, gt=0)

    # A crowd. Each web process works on at most `request_concurrency` requests that use
    # the database at once, and keeps exactly that many pooled connections for them (plus
    # a few for its delivery loop, /readyz and /metrics): a request admitted always finds
    # a connection and a worker thread, so no request waits on another to free one, and
    # the rest wait in line for at most `request_queue_seconds`, then get a quick 503
    # with Retry-After instead of a hang. See app/core/admission.py.
    request_concurrency: int = Field(default=16, ge=1, le=200)
    request_queue_seconds: float = Field(default=5.0, ge=0, le=60)
    # From its first byte, a request (line, headers, body) must arrive within this long,
    # or its connection is closed: slow or stalled clients cannot pile up connections.
    request_read_seconds: float = Field(default=10.0, gt=0, le=300)
    # Addresses and networks of reverse proxies whose X-Forwarded-For is believed; from
    # anyone else the header is ignored and the peer's address is the client's, so
    # per-address limits can neither be dodged with a forged header nor collapse into one
    # bucket for everyone behind a proxy. Comma-separated: "127.0.0.1, 10.0.0.0/8".
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp(cls, value: str) -> str:
        if value:
            parse_smtp_url(value)
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        # Redis only: it also holds the limits every web process and worker share (signing,
        # login, per-domain delivery rates), which another broker could not.
        if value and urlsplit(value).scheme not in ("redis", "rediss"):
            raise ValueError("must be a redis:// (or rediss://) URL")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network") from exc
        return value

    @field_validator("fax_gateway")
    @classmethod
    def _check_fax_gateway(cls, value: str) -> str:
        if value and ("{number}" not in value or "@" not in value):
            raise ValueError("must look like {number}@fax.example.net")
        return value

    @field_validator("bounce_domain")
    @classmethod
    def _check_bounce_domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        labels = value.split(".")
        if value and (
            len(labels) < 2
            or len(value) > 200
            or not all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", x) for x in labels)
        ):
            raise ValueError("must be a domain name like bounces.example.org")
        return value

    @field_validator("imap_url")
    @classmethod
    def _check_imap(cls, value: str) -> str:
        if value:
            parse_imap_url(value)
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("mail_from")
    @classmethod
    def _check_mail_from(cls, value: str) -> str:
        from email.headerregistry import Address
        from email.utils import parseaddr

        name, addr = parseaddr(value)
        if "@" not in addr or any(c in value for c in "\r\n"):
            raise ValueError("must be an address like 'Outcry <letters@example.org>'")
        Address(display_name=name, addr_spec=addr)
        return value

    @property
    def smtp(self) -> SmtpConfig | None:
        return parse_smtp_url(self.smtp_url) if self.smtp_url else None

    @property
    def mail_from_address(self) -> str:
        from email.utils import parseaddr

        return parseaddr(self.mail_from)[1]

    @property
    def imap(self) -> ImapConfig | None:
        return parse_imap_url(self.imap_url) if self.imap_url else None

    @property
    def embedded(self) -> bool:
        """True when no broker is set: `outcry serve` delivers itself (embedded.DeliveryProcess)."""
        return not self.broker_url

    def resolved_secret_key(self) -> str:
        """The configured key, or the embedded default's generated and kept one."""
        if self.secret_key:
            return self.secret_key
        path = self.secret_key_file
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            key = secrets.token_urlsafe(48)
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: if two processes start at once, one key wins and both read it.
            try:
                with path.open("x") as fh:
                    path.chmod(0o600)
                    fh.write(key)
            except FileExistsError:
                pass
            return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
