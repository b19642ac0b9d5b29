"""Authentication-Results: only our own MTA's verdicts count (pure, no I/O)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.authentication import (
    AuthVerdict,
    accepted,
    assess,
    parse_authentication_results,
)

OURS = "mx.bevilling.example.org"
TRUSTED = (OURS,)


def verdict(*headers: str, trusted: tuple[str, ...] = TRUSTED, unlabelled: bool = False,
            from_domain: str = "kommune.example.org") -> AuthVerdict:
    return assess(headers, trusted_ids=trusted, from_domain=from_domain,
                  trust_unlabelled=unlabelled)


@pytest.mark.parametrize(("header", "expected"), [
    (f"{OURS}; spf=pass smtp.mailfrom=kommune.example.org; dkim=pass header.d=kommune.example.org;"
     " dmarc=pass header.from=kommune.example.org", AuthVerdict.PASS),
    (f"{OURS}; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail "
     "header.from=kommune.example.org", AuthVerdict.FAIL),
    # DMARC decides when it says pass or fail, whatever SPF said; a pass only with header.from.
    (f"{OURS}; spf=softfail smtp.mailfrom=kommune.example.org; dmarc=pass "
     "header.from=kommune.example.org", AuthVerdict.PASS),
    (f"{OURS}; spf=softfail smtp.mailfrom=kommune.example.org; dmarc=pass", AuthVerdict.UNKNOWN),
    (f"{OURS}; spf=pass; dkim=pass; dmarc=fail", AuthVerdict.FAIL),
    # Without DMARC: a pass of DKIM or SPF proves nothing about From, a (soft)fail is a fail.
    (f"{OURS}; spf=softfail smtp.mailfrom=kommune.example.org", AuthVerdict.FAIL),
    (f"{OURS}; spf=softfail; dkim=pass header.d=kommune.example.org", AuthVerdict.FAIL),
    (f"{OURS}; spf=pass smtp.mailfrom=kommune.example.org; dkim=pass "
     "header.d=kommune.example.org", AuthVerdict.UNKNOWN),
    (f"{OURS}; dkim=fail header.d=kommune.example.org", AuthVerdict.FAIL),
    (f"{OURS}; spf=none; dkim=none; dmarc=none", AuthVerdict.UNKNOWN),
    (f"{OURS}; none", AuthVerdict.UNKNOWN),
    # authserv-id with a version, upper case, folded whitespace.
    (f"{OURS.upper()} 1;\r\n\tDMARC=PASS header.from=kommune.example.org", AuthVerdict.PASS),
])
def test_trusted_header(header: str, expected: AuthVerdict) -> None:
    assert verdict(header) is expected


@pytest.mark.parametrize("header", [
    "mx.evil.example; dmarc=pass header.from=kommune.example.org",
    f"{OURS}.evil.example; dmarc=pass",  # a look-alike id is another id
    f"evil.{OURS}; dmarc=pass",
])
def test_untrusted_authserv_id_is_ignored(header: str) -> None:
    assert verdict(header) is AuthVerdict.UNKNOWN
    assert verdict(header.replace("pass", "fail")) is AuthVerdict.UNKNOWN


def test_nothing_is_trusted_without_configured_ids() -> None:
    assert verdict(f"{OURS}; dmarc=fail", trusted=()) is AuthVerdict.UNKNOWN


def test_no_header_is_unknown() -> None:
    assert verdict() is AuthVerdict.UNKNOWN


def test_any_trusted_fail_wins_over_a_pass() -> None:
    aligned = f"{OURS}; dmarc=pass header.from=kommune.example.org"
    assert verdict(aligned, f"{OURS}; dmarc=fail") is AuthVerdict.FAIL
    assert verdict(aligned, "mx.evil.example; dmarc=fail") is AuthVerdict.PASS


def test_unlabelled_single_result_counts_only_when_trusted() -> None:
    assert verdict("dmarc=fail header.from=kommune.example.org") is AuthVerdict.UNKNOWN
    assert verdict("dmarc=fail header.from=kommune.example.org", unlabelled=True) \
        is AuthVerdict.FAIL
    assert verdict("dmarc=pass header.from=kommune.example.org", unlabelled=True) \
        is AuthVerdict.PASS
    assert verdict("spf=pass smtp.mailfrom=kommune.example.org", unlabelled=True) \
        is AuthVerdict.UNKNOWN


# Microsoft 365 writes its header without an authserv-id, but with `;` between the methods.
M365_FAIL = ("spf=fail (sender IP is 198.51.100.7) smtp.mailfrom=evil.example; dkim=none "
             "(message not signed) header.d=none;dmarc=fail action=quarantine "
             "header.from=kommune.example.org;compauth=fail reason=000")
M365_PASS = M365_FAIL.replace("=fail", "=pass").replace("dkim=none", "dkim=pass")


def test_m365_unlabelled_header_is_ignored_without_trust() -> None:
    assert verdict(M365_FAIL) is AuthVerdict.UNKNOWN


@pytest.mark.parametrize(("header", "expected"), [(M365_FAIL, AuthVerdict.FAIL),
                                                  (M365_PASS, AuthVerdict.PASS)])
def test_m365_unlabelled_header_counts_when_unlabelled_is_trusted(
    header: str, expected: AuthVerdict,
) -> None:
    assert verdict(header, unlabelled=True) is expected


@pytest.mark.parametrize(("value", "accept_unverified", "require_pass"), [
    (AuthVerdict.PASS, True, True),
    (AuthVerdict.UNKNOWN, True, False),
    (AuthVerdict.FAIL, False, False),
])
def test_policies(value: AuthVerdict, accept_unverified: bool, require_pass: bool) -> None:
    assert accepted(value, policy="accept-unverified") is accept_unverified
    assert accepted(value, policy="require-pass") is require_pass


# --- the issue "Hostile mail and hostile files": alignment and a real parser ---------------------

@pytest.mark.parametrize("header", [
    # SPF passed for the forger's own domain; no DMARC for the From domain
    f"{OURS}; spf=pass smtp.mailfrom=forger@x.example.org; dkim=pass header.d=x.example.org",
    # DMARC passed, but for the forger's domain (header.from not the From domain)
    f"{OURS}; dmarc=pass header.from=x.example.org",
    f"{OURS}; dmarc=pass header.from=kommune.example.org.x.example.org",
    f"{OURS}; dmarc=pass header.from=evilkommune.example.org",
    # "dmarc=pass" inside a comment or another property's value
    f"{OURS}; spf=pass (dmarc=pass header.from=kommune.example.org) smtp.mailfrom=x.example.org",
    f'{OURS}; spf=pass smtp.mailfrom="dmarc=pass header.from=kommune.example.org"@x.example.org',
    f"{OURS}; dkim=pass header.b=(dmarc=pass) header.d=x.example.org",
    f'{OURS}; dkim=pass reason="dmarc=pass header.from=kommune.example.org"',
    # a comment that hides the ";" between results
    f"{OURS}; spf=none (x; dmarc=pass header.from=kommune.example.org)",
])
def test_only_an_aligned_dmarc_pass_counts(header: str) -> None:
    assert verdict(header) is not AuthVerdict.PASS
    assert not accepted(verdict(header), policy="require-pass")


@pytest.mark.parametrize("header", [
    f"{OURS}; dmarc=pass (p=quarantine) header.from=kommune.example.org",
    f"{OURS}; dmarc=pass header.from=KOMMUNE.example.org.",
    f'{OURS} 1; dmarc=pass header.from="kommune.example.org"',
    f"{OURS}; spf=fail smtp.mailfrom=x.example.org; dmarc=pass policy.dmarc=quarantine "
    "header.from=kommune.example.org",
])
def test_an_aligned_dmarc_pass_counts(header: str) -> None:
    assert verdict(header) is AuthVerdict.PASS


def test_alignment_is_with_the_from_domain_of_this_message() -> None:
    header = f"{OURS}; dmarc=pass header.from=kommune.example.org"
    assert verdict(header, from_domain="x.example.org") is AuthVerdict.UNKNOWN


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_header_value_parses_without_raising(value: str) -> None:
    parse_authentication_results(value)
    assert verdict(f"{OURS}; {value}") in set(AuthVerdict)
