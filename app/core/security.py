"""Tokens, password hashing and the secrets in links."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

# The shortest password an organiser may choose.
PASSWORD_MIN = 12

_hasher = PasswordHasher()
# Checked when the e-mail is unknown, so an unknown organiser takes as long to
# refuse as a wrong password and logins cannot probe which addresses exist.
_DUMMY_HASH = _hasher.hash("outcry-dummy-password")


def new_token(nbytes: int = 24) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def hash_token(token: str) -> str:
    """SHA-256 of a high-entropy token: enough for tokens, never for passwords."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets."""
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True if `password` matches; always does the work of one argon2 check."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def sign(secret: str, purpose: str, value: str) -> str:
    """A URL-safe token carrying `value`, signed for one `purpose`."""
    return URLSafeSerializer(secret, salt=f"outcry.{purpose}").dumps(value)


def unsign(secret: str, purpose: str, token: str) -> str | None:
    """The value inside a token made by sign(), or None if it is not genuine."""
    try:
        value = URLSafeSerializer(secret, salt=f"outcry.{purpose}").loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def derive(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` for one `purpose`: a value that can be shown (a CSRF token)
    without revealing `value` (the session token it is derived from) or the secret."""
    # hmac.digest(): OpenSSL's one-shot HMAC, the same bytes as hmac.new()'s at a third of
    # its cost; a signature derives four of these (issue 10).
    return hmac.digest(secret.encode(), f"outcry.{purpose}:{value}".encode(), "sha256").hex()


def invitation_token(secret: str, nonce: str) -> str:
    """The token in an invitation's link, derived from its nonce: the database keeps only
    the token's hash, and whoever sends the e-mail derives the token again."""
    return derive(secret, "invitation", nonce)
