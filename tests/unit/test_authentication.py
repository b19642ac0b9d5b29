"""Authentication-Results: only our own MTA's verdicts count (pure, no I/O)."""

import pytest

from domain.authentication import AuthVerdict, accepted, assess

OURS = "mx.bevilling.example.org"
TRUSTED = (OURS,)


def verdict(*headers: str, trusted: tuple[str, ...] = TRUSTED, unlabelled: bool = False,
            ) -> AuthVerdict:
    return assess(headers, trusted_ids=trusted, trust_unlabelled=unlabelled)


@pytest.mark.parametrize(("header", "expected"), [
    (f"{OURS}; spf=pass smtp.mailfrom=kommune.example.org; dkim=pass header.d=kommune.example.org;"
     " dmarc=pass header.from=kommune.example.org", AuthVerdict.PASS),
    (f"{OURS}; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail "
     "header.from=kommune.example.org", AuthVerdict.FAIL),
    # DMARC decides when it says pass or fail, whatever SPF said.
    (f"{OURS}; spf=softfail smtp.mailfrom=kommune.example.org; dmarc=pass", AuthVerdict.PASS),
    (f"{OURS}; spf=pass; dkim=pass; dmarc=fail", AuthVerdict.FAIL),
    # Without DMARC: a pass of DKIM or SPF counts, else a (soft)fail is a fail.
    (f"{OURS}; spf=softfail smtp.mailfrom=kommune.example.org", AuthVerdict.FAIL),
    (f"{OURS}; spf=softfail; dkim=pass header.d=kommune.example.org", AuthVerdict.PASS),
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
    assert verdict(f"{OURS}; dmarc=pass", f"{OURS}; dmarc=fail") is AuthVerdict.FAIL
    assert verdict(f"{OURS}; dmarc=pass", "mx.evil.example; dmarc=fail") is AuthVerdict.PASS


def test_unlabelled_single_result_counts_only_when_trusted() -> None:
    assert verdict("dmarc=fail header.from=kommune.example.org") is AuthVerdict.UNKNOWN
    assert verdict("dmarc=fail header.from=kommune.example.org", unlabelled=True) \
        is AuthVerdict.FAIL
    assert verdict("spf=pass smtp.mailfrom=kommune.example.org", unlabelled=True) \
        is AuthVerdict.PASS


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
