"""Judging Authentication-Results headers: trust only our own MTA's verdicts."""

import re
from collections.abc import Iterable
from enum import StrEnum

_RESULT = re.compile(r"\b(dmarc|spf|dkim)\s*=\s*([a-z]+)", re.IGNORECASE)
_PASS = "pass"  # noqa: S105  (an RFC 8601 result keyword, not a password)
_FAIL = "fail"


class AuthVerdict(StrEnum):
    PASS = "pass"  # noqa: S105  (an RFC 8601 result keyword, not a password)
    FAIL = "fail"
    UNKNOWN = "unknown"


def _authserv_id(value: str) -> str | None:
    """The authserv-id before the first ';', or None when the header starts with a result."""
    head = value.split(";", 1)[0].strip()
    if not head or "=" in head:
        # Microsoft 365 writes "spf=pass (…) smtp.mailfrom=…; dkim=…" with no authserv-id.
        return None
    return head.split()[0].lower()


def assess(
    headers: Iterable[str], *, trusted_ids: Iterable[str], trust_unlabelled: bool = False
) -> AuthVerdict:
    """PASS/FAIL from trusted Authentication-Results headers; UNKNOWN when none can be trusted."""
    trusted = {item.lower() for item in trusted_ids}
    verdicts: list[AuthVerdict] = []
    for value in headers:
        authserv_id = _authserv_id(value)
        if authserv_id is not None and authserv_id not in trusted:
            continue
        if authserv_id is None and not trust_unlabelled:
            continue
        results: dict[str, str] = {}
        for method, outcome in _RESULT.findall(value):
            results.setdefault(method.lower(), outcome.lower())
        if "dmarc" in results and results["dmarc"] in (_PASS, _FAIL):
            verdicts.append(AuthVerdict(results["dmarc"]))
        elif _PASS in (results.get("dkim"), results.get("spf")):
            verdicts.append(AuthVerdict.PASS)
        elif results.get("spf") in (_FAIL, "softfail") or results.get("dkim") == _FAIL:
            verdicts.append(AuthVerdict.FAIL)
    if AuthVerdict.FAIL in verdicts:
        return AuthVerdict.FAIL
    return AuthVerdict.PASS if verdicts else AuthVerdict.UNKNOWN


def accepted(verdict: AuthVerdict, *, policy: str) -> bool:
    """Whether a reply with this verdict may count under the configured policy."""
    if policy == "require-pass":
        return verdict is AuthVerdict.PASS
    return verdict is not AuthVerdict.FAIL
