"""Floods and mail bombs: the checks a signature passes on any surface (API or form).

The flood guard counts an appeal's signatures per network (/24 for IPv4, /48 for IPv6)
and per mail domain over a sliding hour; past a threshold, further letters from that
network or domain are held for moderation instead of going to the targets. Nothing is
refused and nothing is lost: the organisers see why each letter waits, and release a
whole group at once. The confirmation quota stops the form from being used to send
one inbox confirmation request after confirmation request.

The counts live in the rate limiter (Redis with a broker, else in the process), under
keyed hashes: neither a network nor an address is written down anywhere. A broken
Redis never costs a signature: the checks are skipped.
"""

from __future__ import annotations

import ipaddress
import math

from app.core import security
from app.core.config import Settings
from app.core.errors import RateLimited, TooManyConfirmations
from app.delivery import ratelimit
from app.models import Appeal

HOUR = 3600.0
DAY = 86400.0
# Big public mail providers: thousands of strangers share each, so a domain count says
# nothing about a flood there (the network count still applies). Operators add their
# own with OUTCRY_FLOOD_SHARED_DOMAINS.
SHARED_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.com",
        "gmx.net",
        "gmx.de",
        "web.de",
        "proton.me",
        "protonmail.com",
        "tutanota.com",
        "mail.com",
        "zoho.com",
        "yandex.ru",
        "yandex.com",
        "yandex.kz",
        "ya.ru",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "internet.ru",
        "rambler.ru",
        "mail.kz",
        "inbox.kz",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "t-online.de",
        "btinternet.com",
        "qq.com",
        "163.com",
    }
)


def network_of(host: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) a client address belongs to; None if it is not one."""
    try:
        address = ipaddress.ip_address((host or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def domain_of(email: str) -> str:
    """The domain of a normalised address."""
    return email.rpartition("@")[2].lower()


def _shared(settings: Settings) -> frozenset[str]:
    extra = {d.strip().lower() for d in settings.flood_shared_domains.split(",") if d.strip()}
    return SHARED_DOMAINS | extra


def _tag(settings: Settings, purpose: str, value: str) -> str:
    # Short and keyed: enough to tell groups apart, nothing to read the value back from.
    return security.derive(settings.resolved_secret_key(), purpose, value)[:12]


def check_signature(
    settings: Settings, *, appeal: Appeal, email: str, client: str | None, confirmation: bool
) -> str:
    """Count this signature against its network's and its mail domain's hourly thresholds
    for the appeal and, when it asks for `confirmation`, one confirmation e-mail against
    the address's OUTCRY_CONFIRMATIONS_PER_ADDRESS_PER_DAY, all in one call to the limiter
    (one round trip to Redis). Returns the hold reason if a flood threshold is passed
    ("network:<tag>", before "domain:<domain>"), else ""; TooManyConfirmations (429)
    past the quota. Each count is taken on its own, as if asked alone."""
    limits: list[tuple[str, int, float]] = []
    network_reason = domain_reason = ""
    network = network_of(client)
    if network and settings.flood_network_per_hour > 0:
        tag = _tag(settings, "flood-network", network)
        network_reason = f"network:{tag}"
        limits.append((f"flood:{appeal.id}:net:{tag}", settings.flood_network_per_hour, HOUR))
    domain = domain_of(email)
    if settings.flood_domain_per_hour > 0 and domain not in _shared(settings):
        domain_reason = f"domain:{domain}"
        key = f"flood:{appeal.id}:dom:{_tag(settings, 'flood-domain', domain)}"
        limits.append((key, settings.flood_domain_per_hour, HOUR))
    quota = settings.confirmations_per_address_per_day if confirmation else 0
    if quota > 0:
        limits.append((f"confirm-mail:{_tag(settings, 'mailbox', email)}", quota, DAY))
    waits = iter(ratelimit.client_waits(settings.broker_url, limits))
    over_network = bool(network_reason) and next(waits) > 0
    over_domain = bool(domain_reason) and next(waits) > 0
    if quota > 0 and (wait := next(waits)) > 0:
        raise TooManyConfirmations(math.ceil(wait))
    if over_network:
        return network_reason
    return domain_reason if over_domain else ""


def check_signing_limit(settings: Settings, client: str | None) -> None:
    """RateLimited (429) once a client address has signed OUTCRY_SIGN_LIMIT_PER_HOUR
    letters this hour; each call takes one. Called first thing on the route's own thread:
    as a dependency of its own it took a worker thread of its own (issue 10)."""
    if settings.sign_limit_per_hour <= 0:
        return
    wait = ratelimit.client_wait(
        settings.broker_url,
        f"sign:{client or 'unknown'}",
        limit=settings.sign_limit_per_hour,
        period=HOUR,
    )
    if wait > 0:
        raise RateLimited(math.ceil(wait))
