"""Reply tokens (in the Reply-To address) and signed confirm links.

A reply token is 128 random bits as 26 lower-case base32 characters: short enough for an
address local part, and still valid when a mail client changes its case. Only its SHA-256 is
stored. Links carry the same token inside an itsdangerous signature with a maximum age.
"""

import base64
import hashlib
import re
import secrets
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from domain.errors import InputError

TOKEN_PATTERN = re.compile(r"^[a-z2-7]{26}$")
LINK_SALT = "bevilling-confirm-link"


class LinkError(InputError):
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


class _SignerAt(TimestampSigner):
    """itsdangerous' timestamp signer with the caller's clock instead of time.time()."""

    def __init__(self, secret_key: str, salt: str = LINK_SALT, *, now: datetime) -> None:
        super().__init__(secret_key, salt=salt)
        self._timestamp = int(now.timestamp())

    def get_timestamp(self) -> int:
        return self._timestamp


def sign_link(token: str, *, secret: str, now: datetime) -> str:
    """The signed path segment of a confirm link, `<token>.<timestamp>.<signature>`, dated `now`."""
    return _SignerAt(secret, now=now).sign(token).decode("ascii")


def read_link(signed: str, *, secret: str, max_age_seconds: int, now: datetime) -> str:
    """The token inside a signed link (not older than `max_age_seconds` at `now`), or LinkError.

    Links mailed before the token was signed as it is carry it in an itsdangerous serializer
    payload (same secret and salt); those are read too.
    """
    try:
        value = _SignerAt(secret, now=now).unsign(signed, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise LinkError("expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid") from exc
    token = value.decode("ascii", "replace")
    if TOKEN_PATTERN.match(token):
        return token
    serializer = URLSafeTimedSerializer(secret, salt=LINK_SALT, signer=_SignerAt,
                                        signer_kwargs={"now": now})
    try:
        payload = serializer.loads(signed, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise LinkError("expired") from exc
    except BadSignature as exc:
        raise LinkError("invalid") from exc
    earlier = payload.get("t") if isinstance(payload, dict) else None
    if not isinstance(earlier, str) or not TOKEN_PATTERN.match(earlier):
        raise LinkError("invalid")
    return earlier
