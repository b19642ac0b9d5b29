"""Reply tokens (in the Reply-To address) and signed confirm links.

A reply token is 128 random bits as 26 lower-case base32 characters: short enough for an
address local part, and still valid when a mail client changes its case. Only its SHA-256 is
stored. Links carry the same token inside an itsdangerous signature with a maximum age.
"""

import base64
import hashlib
import re
import secrets
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

TOKEN_PATTERN = re.compile(r"^[a-z2-7]{26}$")
LINK_SALT = "bevilling-confirm-link"


class LinkError(Exception):
    """A confirm link is forged, damaged or too old; `.reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_token() -> str:
    """A fresh random reply token."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def token_hash(token: str) -> str:
    """What the database stores for a token."""
    return hashlib.sha256(token.strip().lower().encode("ascii", "replace")).hexdigest()


def reply_address(token: str, *, domain: str) -> str:
    """approvals+<token>@<domain>."""
    return f"approvals+{token}@{domain}"


@lru_cache(maxsize=4)
def _signer(secret: str) -> TimestampSigner:
    # Built once per secret: every approval mail signs a link.
    return TimestampSigner(secret, salt=LINK_SALT)


@lru_cache(maxsize=4)
def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=LINK_SALT)


def sign_link(token: str, *, secret: str) -> str:
    """The signed path segment of a confirm link: `<token>.<timestamp>.<signature>`."""
    return _signer(secret).sign(token).decode("ascii")


def read_link(signed: str, *, secret: str, max_age_seconds: int) -> str:
    """The token inside a signed link, or LinkError.

    Links mailed before the token was signed as it is carry it in an itsdangerous serializer
    payload (same secret and salt); those are read too.
    """
    try:
        value = _signer(secret).unsign(signed, max_age=max_age_seconds).decode("ascii", "replace")
    except SignatureExpired as exc:
        raise LinkError("expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid") from exc
    if TOKEN_PATTERN.match(value):
        return value
    try:
        payload = _serializer(secret).loads(signed, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise LinkError("expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid") from exc
    token = payload.get("t") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        raise LinkError("invalid")
    return token
