"""Settings from the environment: defaults, SMTP URLs, errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings, parse_smtp_url


def test_defaults_are_the_embedded_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "BROKER_URL", "SMTP_URL", "OUTBOX_DIR", "MAIL_FROM"):
        monkeypatch.delenv(f"OUTCRY_{name}", raising=False)
    settings = Settings()
    assert settings.database_url == "sqlite:///./outcry.db"
    assert settings.embedded
    assert settings.smtp is None
    assert settings.outbox_dir == Path("./outbox")
    assert settings.mail_from_address == "letters@localhost"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org:2525", ("mail.example.org", 2525, None, False, False)),
        ("smtp://u%40x:p%3Ass@h:587?starttls=true", ("h", 587, "u@x", False, True)),
        ("smtps://h", ("h", 465, None, True, False)),
        ("smtp://h", ("h", 25, None, False, False)),
    ],
)
def test_smtp_urls(url: str, expected: tuple[object, ...]) -> None:
    cfg = parse_smtp_url(url)
    assert (cfg.host, cfg.port, cfg.username, cfg.use_tls, cfg.start_tls) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("smtp_url", "http://mail"),
        ("smtp_url", "smtp://h?colour=red"),
        ("broker_url", "http://redis"),
        ("fax_gateway", "fax.example.net"),
        ("base_url", "ftp://x"),
        ("mail_from", "Outcry <letters@localhost>\r\nBcc: x@example.com"),
        ("mail_from", "no address"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**{variable: value})  # type: ignore[arg-type]
    assert info.value.errors()[0]["loc"] == (variable,)


def test_generated_secret_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    first = Settings(secret_key="", secret_key_file=path).resolved_secret_key()
    again = Settings(secret_key="", secret_key_file=path).resolved_secret_key()
    assert first == again
    assert len(first) >= 40
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("url", ["amqp://guest@localhost//", "memory://", "sqs://"])
def test_a_broker_other_than_redis_is_refused(url: str) -> None:
    # Redis also holds the limits web processes and workers share.
    with pytest.raises(ValidationError) as info:
        Settings(broker_url=url)
    error = info.value.errors()[0]
    assert error["loc"] == ("broker_url",)
    assert "redis://" in error["msg"]


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTCRY_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1")
    assert Settings().trusted_proxies == ["127.0.0.1", "10.0.0.0/8", "::1"]
    monkeypatch.setenv("OUTCRY_TRUSTED_PROXIES", "127.0.0.1, proxy.example.org")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert info.value.errors()[0]["loc"] == ("trusted_proxies",)
    assert "proxy.example.org" in info.value.errors()[0]["msg"]


def test_bounce_domain_and_imap_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTCRY_BOUNCE_DOMAIN", "Bounces.Example.org.")
    monkeypatch.setenv("OUTCRY_IMAP_URL", "imaps://in%40x:p%3Ass@mail.example.org/Outcry%20In")
    settings = Settings()
    assert settings.bounce_domain == "bounces.example.org"
    imap = settings.imap
    assert imap is not None
    assert (imap.host, imap.port, imap.username, imap.password, imap.mailbox, imap.use_tls) == (
        "mail.example.org",
        993,
        "in@x",
        "p:ss",
        "Outcry In",
        True,
    )
    for name, value in (
        ("OUTCRY_BOUNCE_DOMAIN", "bounces+x@example.org"),
        ("OUTCRY_BOUNCE_DOMAIN", "localhost"),
        ("OUTCRY_IMAP_URL", "imaps://mail.example.org/INBOX"),
        ("OUTCRY_IMAP_URL", "http://u:p@mail.example.org"),
    ):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError) as error:
            Settings()
        assert name.removeprefix("OUTCRY_").lower() in str(error.value)
        monkeypatch.delenv(name)
