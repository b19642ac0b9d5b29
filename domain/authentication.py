"""Judging Authentication-Results headers (RFC 8601): trust only our own MTA's verdicts.

Pure: stdlib only. Each header is read by a tokenizer for the RFC 8601 grammar — comments (nested,
with quoted pairs) and quoted strings are tokens of their own, so a `dmarc=pass` inside a comment
or inside another property's value is never read as a result. (The `authres` package raises on
the header Microsoft 365 writes, without an authserv-id; see MAIL-NOTES.)

Only headers from a trusted authserv-id count (and, when configured, unlabelled ones). A reply
passes only when a trusted header says `dmarc=pass` *aligned with the From domain*: its
`header.from` is the domain of the From address (RFC 7489 section 3.1, identifier alignment; the
DMARC verdict already encodes SPF/DKIM alignment). SPF or DKIM passes alone prove nothing about
the From address (they may be the forger's own domain). A trusted `dmarc=fail`, or, without a
DMARC result, an SPF (soft)fail or DKIM fail, is a FAIL.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["AuthVerdict", "ResultInfo", "accepted", "assess", "parse_authentication_results"]

_PASS = "pass"  # noqa: S105  (an RFC 8601 result keyword, not a password)
_FAIL = "fail"
_SPECIALS = frozenset(';="()')


class AuthVerdict(StrEnum):
    PASS = "pass"  # noqa: S105  (an RFC 8601 result keyword, not a password)
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ResultInfo:
    """One `method=result` of a header with its properties (`header.from` → `kommune.dk`)."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Token:
    kind: str  # "atom", "quoted", or one of ; =
    text: str


def _comment_end(value: str, start: int) -> int:
    """The index after the comment that opens at `start` (nested, quoted pairs); len at EOF."""
    depth, index = 0, start
    while index < len(value):
        char = value[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(value)


def _tokens(value: str) -> Iterator[_Token]:
    index = 0
    while index < len(value):
        char = value[index]
        if char.isspace():
            index += 1
        elif char == "(":
            index = _comment_end(value, index)
        elif char in ";=":
            yield _Token(char, char)
            index += 1
        elif char == '"':
            index += 1
            text: list[str] = []
            while index < len(value) and value[index] != '"':
                if value[index] == "\\" and index + 1 < len(value):
                    index += 1
                text.append(value[index])
                index += 1
            index += 1
            yield _Token("quoted", "".join(text))
        elif char == ")":
            index += 1  # an unopened ")": noise, not content
        else:
            start = index
            while (index < len(value) and not value[index].isspace()
                   and value[index] not in _SPECIALS):
                index += 1
            yield _Token("atom", value[start:index])


def _resinfo(segment: list[_Token]) -> ResultInfo | None:
    """`method[/version]=result *(key=value)`; None when the segment is not one."""
    if len(segment) < 3 or segment[0].kind != "atom" or segment[1].kind != "=":
        return None
    if segment[2].kind != "atom":
        return None
    method = segment[0].text.split("/", 1)[0].lower()
    properties: dict[str, str] = {}
    rest = segment[3:]
    while len(rest) >= 3 and rest[0].kind == "atom" and rest[1].kind == "=" \
            and rest[2].kind in ("atom", "quoted"):
        key = rest[0].text.lower()
        if "." in key:
            properties.setdefault(key, rest[2].text)
        rest = rest[3:]
    return ResultInfo(method, segment[2].text.lower(), properties)


def parse_authentication_results(value: str) -> tuple[str | None, list[ResultInfo]]:
    """(authserv-id or None when the header has none, the results) of one header value."""
    segments: list[list[_Token]] = [[]]
    for token in _tokens(value):
        if token.kind == ";":
            segments.append([])
        else:
            segments[-1].append(token)
    head, rest = segments[0], segments[1:]
    authserv_id: str | None = None
    if head and all(token.kind != "=" for token in head):
        authserv_id = head[0].text.lower()  # a version may follow: ignored
    else:
        rest = segments  # Microsoft 365: "spf=pass (…) smtp.mailfrom=…; dkim=…", no id
    results = [info for info in map(_resinfo, rest) if info is not None]
    return authserv_id, results


def _domain(value: str | None) -> str:
    text = (value or "").strip().lower().rstrip(".")
    return text.rsplit("@", 1)[-1]


def assess(
    headers: Iterable[str], *, trusted_ids: Iterable[str], from_domain: str | None,
    trust_unlabelled: bool = False,
) -> AuthVerdict:
    """PASS (trusted, DMARC aligned with `from_domain`), FAIL, or UNKNOWN when none can be trusted.
    """
    trusted = {item.lower() for item in trusted_ids}
    aligned_to = _domain(from_domain)
    verdicts: list[AuthVerdict] = []
    for value in headers:
        authserv_id, infos = parse_authentication_results(value)
        if authserv_id is not None and authserv_id not in trusted:
            continue
        if authserv_id is None and not trust_unlabelled:
            continue
        first: dict[str, ResultInfo] = {}
        for info in infos:
            first.setdefault(info.method, info)
        dmarc, spf, dkim = first.get("dmarc"), first.get("spf"), first.get("dkim")
        if dmarc is not None and dmarc.result in (_PASS, _FAIL):
            if dmarc.result == _FAIL:
                verdicts.append(AuthVerdict.FAIL)
            elif aligned_to and _domain(dmarc.properties.get("header.from")) == aligned_to:
                verdicts.append(AuthVerdict.PASS)
        elif (spf is not None and spf.result in (_FAIL, "softfail")) or (
                dkim is not None and dkim.result == _FAIL):
            verdicts.append(AuthVerdict.FAIL)
    if AuthVerdict.FAIL in verdicts:
        return AuthVerdict.FAIL
    return AuthVerdict.PASS if verdicts else AuthVerdict.UNKNOWN


def accepted(verdict: AuthVerdict, *, policy: str) -> bool:
    """Whether a reply with this verdict may count under the configured policy."""
    if policy == "require-pass":
        return verdict is AuthVerdict.PASS
    return verdict is not AuthVerdict.FAIL
