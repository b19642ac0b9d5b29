"""Inbound parsing over the .eml corpus: raw bytes → ParsedInbound → new text → verdict."""

import hashlib
from dataclasses import astuple, dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.replies import Decision, VerdictKind, extract_new_text, interpret_reply
from mail.inbound_parse import (
    InboundParseError,
    ParsedInbound,
    VerpAddress,
    parse_inbound,
    token_from_recipients,
    verp_address,
)
from mail.reply_reading import read_reply

CORPUS = Path(__file__).parents[1] / "fixtures" / "eml"
DOMAIN = "bevilling.example.org"
PLACEHOLDER = b"a" * 26
REAL_TOKEN = "k3fzq2m7x4b6nap2r5t7v2w4y6"
APPROVER = "karen.holm@kommune.example.org"
ORIGINAL_ID = "<ob-17.k3f9@bevilling.example.org>"


@dataclass(frozen=True)
class Expected:
    """What one corpus file must come out as."""

    outcome: str  # decision | ambiguous | empty | automated | bounce | parse-error
    decision: Decision | None = None
    comment: str | None = None  # a fragment the comment must contain
    reason: str | None = None
    from_address: str | None = APPROVER
    bounce_status: str | None = None
    bounce_hard: bool = False


A, R = Decision.APPROVE, Decision.REJECT
EXPECTED: dict[str, Expected] = {
    "outlook-desktop-da-approve": Expected("decision", A, comment="Venlig hilsen"),
    "outlook-desktop-en-reject-with-comment": Expected(
        "decision", R, comment="the 2027 budget frame for Digitalisering is already fully"
    ),
    "outlook-web-da-approve": Expected("decision", A, comment="god investering i sikkerheden"),
    "gmail-da-approve": Expected("decision", A, comment="Mvh Karen"),
    "gmail-en-reject": Expected("decision", R, comment="fund this from the 2028 frame"),
    "apple-mail-da-approve": Expected("decision", A, comment="god idé at samle det i ét projekt"),
    "html-only-approve": Expected("decision", A, comment=""),
    "thunderbird-approve": Expected("decision", A, comment="Best regards,\nKaren"),
    "forwarded": Expected(
        "decision", A, comment="Mvh Jens", from_address="jens.vestergaard@kommune.example.org"
    ),
    "spoofed-from": Expected("decision", A, comment=""),
    "ambiguous-both-keywords": Expected("ambiguous", reason="both keywords present"),
    "ambiguous-negation": Expected("ambiguous", reason="negation 'ikke godkende'"),
    "ambiguous-ja": Expected("ambiguous", reason="first line is not a decision keyword"),
    "empty-reply": Expected("empty"),
    "outlook-de-reject-unknown-quote": Expected("ambiguous", reason="both keywords present"),
    "approve-with-comment-multiline": Expected(
        "decision",
        A,
        comment="Fint og velbegrundet oplæg.\nHusk at tilknytte en controller fra Økonomi fra "
        "start.\nBudgettet skal følges op i juni 2027.\n\n/Karen",
    ),
    "utf8-subject-encoded-words": Expected("decision", A, comment="Økonomi og Ressourcer"),
    "out-of-office-da": Expected("automated", reason="Auto-Submitted: auto-replied"),
    "out-of-office-exchange": Expected("automated", reason="subject starts with 'autosvar'"),
    "mailing-list": Expected("automated", reason="List-Id header"),
    "dsn-bounce-hard": Expected(
        "bounce",
        from_address="mailer-daemon@mx.bevilling.example.org",
        bounce_status="5.1.1",
        bounce_hard=True,
    ),
    "dsn-bounce-soft": Expected(
        "bounce", from_address="postmaster@kommune.example.org", bounce_status="4.2.2"
    ),
    "malformed-headers": Expected("parse-error", from_address=None),
    # the issue "Hostile mail and hostile files"
    "hostile-outlook-godkend-ikke-endnu": Expected(
        "ambiguous", reason="doubt 'ikke' on the keyword's line"),
    "hostile-html-only-hidden-approve": Expected(
        "ambiguous", reason="the reply holds text its HTML does not display"),
    "hostile-gmail-borrowed-display-name": Expected(
        "decision", A, comment="Mvh Karen", from_address=None),  # refused by the caller
}
CORPUS_FILES = sorted(CORPUS.glob("*.eml"))


def raw_of(name: str, *, token: str = REAL_TOKEN) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes().replace(PLACEHOLDER, token.encode())


def test_every_corpus_file_has_an_expectation() -> None:
    assert {path.stem for path in CORPUS_FILES} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_outcome(name: str) -> None:
    expected = EXPECTED[name]
    if expected.outcome == "parse-error":
        with pytest.raises(InboundParseError) as caught:
            parse_inbound(raw_of(name))
        assert caught.value.reason
        return
    parsed = parse_inbound(raw_of(name))
    assert parsed.from_address == expected.from_address
    if expected.outcome == "bounce":
        assert parsed.automated_reason is not None
        assert parsed.bounce is not None
        assert parsed.bounce.status == expected.bounce_status
        assert parsed.bounce.hard is expected.bounce_hard
        assert parsed.bounce.recipient == APPROVER
        assert parsed.bounce.original_message_id == ORIGINAL_ID
        assert verp_address(parsed.recipients, domain=DOMAIN) == VerpAddress(17, None)
        return
    assert parsed.bounce is None
    assert parsed.in_reply_to == ORIGINAL_ID
    assert token_from_recipients(parsed.recipients, domain=DOMAIN) == REAL_TOKEN
    if expected.outcome == "automated":
        assert parsed.automated_reason == expected.reason
        return
    assert parsed.automated_reason is None
    verdict = read_reply(plain=parsed.plain_text, html=parsed.html_text)  # as ingestion reads
    assert verdict.kind is VerdictKind(expected.outcome)
    assert verdict.decision is expected.decision
    if expected.reason is not None:
        assert verdict.reason == expected.reason
    if expected.comment is not None:
        assert expected.comment in verdict.comment
        if not expected.comment:
            assert verdict.comment == ""


@pytest.mark.parametrize(
    "name",
    [
        name
        for name, e in sorted(EXPECTED.items())
        if e.outcome in ("decision", "ambiguous", "empty")
        and b"multipart/alternative" in raw_of(name)
    ],
)
def test_html_part_alone_gives_the_same_verdict(name: str) -> None:
    parsed = parse_inbound(raw_of(name))
    assert parsed.html_text is not None
    from_plain = interpret_reply(extract_new_text(plain=parsed.plain_text, html=None))
    from_html = interpret_reply(extract_new_text(plain=None, html=parsed.html_text))
    assert (from_html.kind, from_html.decision) == (from_plain.kind, from_plain.decision)


def test_headers_are_decoded() -> None:
    parsed = parse_inbound(raw_of("utf8-subject-encoded-words"))
    assert parsed.subject == "SV: Godkendelse: Security Tech Space – finansiering 2027 (STS-2027)"
    assert parsed.from_display == "Karen Holm – Borgmesterens Afdeling"
    assert parsed.message_id == "<4f7a9c2e-1b3d-4e5f-8a6b-7c8d9e0f1a2b@kommune.example.org>"
    assert parsed.references == (ORIGINAL_ID,)
    assert parsed.sender_address == APPROVER  # from Return-Path
    assert parsed.html_text is None


def test_authentication_results_are_kept_raw() -> None:
    spoofed = parse_inbound(raw_of("spoofed-from"))
    assert len(spoofed.authentication_results) == 1
    assert "dmarc=fail" in spoofed.authentication_results[0]
    assert "spf=fail" in spoofed.authentication_results[0]
    genuine = parse_inbound(raw_of("outlook-desktop-da-approve"))
    assert "dmarc=pass" in genuine.authentication_results[0]


def test_recipients_include_envelope_headers() -> None:
    parsed = parse_inbound(raw_of("mailing-list"))
    assert parsed.recipients == (
        "budget@lists.kommune.example.org",
        f"approvals+{REAL_TOKEN}@bevilling.example.org",
    )
    assert parsed.sender_address == "budget-bounces@lists.kommune.example.org"


def test_line_endings_do_not_matter() -> None:
    crlf = raw_of("outlook-desktop-da-approve")
    lf = parse_inbound(crlf.replace(b"\r\n", b"\n"))
    assert lf.message_id == parse_inbound(crlf).message_id
    verdict = interpret_reply(extract_new_text(plain=lf.plain_text, html=lf.html_text))
    assert verdict.decision is Decision.APPROVE


def test_missing_message_id_falls_back_to_the_raw_hash() -> None:
    raw = b"From: Karen Holm <karen.holm@kommune.example.org>\r\nSubject: x\r\n\r\nGODKEND\r\n"
    parsed = parse_inbound(raw)
    assert parsed.message_id == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    assert parsed.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert parsed.plain_text == "GODKEND\r\n" or parsed.plain_text == "GODKEND\n"


def test_folded_message_id_is_compared_without_whitespace() -> None:
    raw = b"Message-ID:\r\n <ob-17.k3f9@bevilling.example.org>\r\nIn-Reply-To: \r\n <x@y>\r\n\r\n"
    parsed = parse_inbound(raw)
    assert parsed.message_id == ORIGINAL_ID
    assert parsed.in_reply_to == "<x@y>"


@pytest.mark.parametrize(
    "from_header",
    [
        b"From: karen.holm@kommune.example.org, jens@kommune.example.org",
        b"From: Karen Holm",
        # a borrowed display name: unquoted (two addresses to getaddresses), quoted, encoded
        b"From: karen.holm@kommune.example.org <forger@x.example.org>",
        b'From: "karen.holm@kommune.example.org" <forger@x.example.org>',
        b"From: =?utf-8?q?karen=2Eholm=40kommune=2Eexample=2Eorg?= <forger@x.example.org>",
        b'From: "Karen Holm (karen.holm@kommune.example.org)" <forger@x.example.org>',
        b"Sender: karen.holm@kommune.example.org",  # no From at all
    ],
)
def test_no_single_author_means_no_from_address(from_header: bytes) -> None:
    parsed = parse_inbound(from_header + b"\r\nSubject: x\r\n\r\nGODKEND\r\n")
    assert parsed.from_address is None
    assert parsed.from_display == ""


def test_unknown_body_charset_is_decoded_leniently() -> None:
    raw = (
        b"From: karen.holm@kommune.example.org\r\nContent-Type: text/plain; charset=unknown-8bit"
        b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGODKEND \xe6\xf8\xe5\r\n"
    )
    parsed = parse_inbound(raw)
    assert parsed.plain_text is not None
    assert interpret_reply(parsed.plain_text).decision is Decision.APPROVE


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"Auto-Submitted: auto-generated", "Auto-Submitted: auto-generated"),
        (b"X-Autoreply: yes", "X-Autoreply header"),
        (b"X-Autorespond: on", "X-Autorespond header"),
        (b"Precedence: bulk", "Precedence: bulk"),
        (b"Precedence: auto_reply", "Precedence: auto_reply"),
        (b"List-Unsubscribe: <mailto:x@y>", "List-Unsubscribe header"),
        (b"Subject: Out of Office: Godkendelse", "subject starts with 'out of office'"),
        (b"Subject: Frav\xc3\xa6rende: Godkendelse", "subject starts with 'fraværende'"),
        (b"Subject: Auto: Godkendelse", "subject starts with 'auto:'"),
        (b"Return-Path: <>", "null sender (Return-Path <>)"),
        (b"Sender: MAILER-DAEMON@mx.example.org", "sent by mailer-daemon@mx.example.org"),
    ],
)
def test_automated_signals(header: bytes, reason: str) -> None:
    raw = b"From: karen.holm@kommune.example.org\r\n" + header + b"\r\n\r\nGODKEND\r\n"
    assert parse_inbound(raw).automated_reason == reason


@pytest.mark.parametrize(
    "header", [b"Auto-Submitted: no", b"X-Auto-Response-Suppress: All", b"Precedence: first-class"]
)
def test_not_automated(header: bytes) -> None:
    raw = b"From: karen.holm@kommune.example.org\r\n" + header + b"\r\n\r\nGODKEND\r\n"
    assert parse_inbound(raw).automated_reason is None


def test_size_limit() -> None:
    raw = raw_of("gmail-da-approve")
    with pytest.raises(InboundParseError, match="exceeds the limit"):
        parse_inbound(raw, max_bytes=len(raw) - 1)
    assert isinstance(parse_inbound(raw, max_bytes=len(raw)), ParsedInbound)


@pytest.mark.parametrize(
    ("recipients", "token"),
    [
        ([f"approvals+{REAL_TOKEN}@bevilling.example.org"], REAL_TOKEN),
        ([f"APPROVALS+{REAL_TOKEN.upper()}@BEVILLING.EXAMPLE.ORG"], REAL_TOKEN),
        ([f" <approvals+{REAL_TOKEN}@bevilling.example.org> "], REAL_TOKEN),
        (["x@y.dk", f"approvals+{REAL_TOKEN}@bevilling.example.org"] * 2, REAL_TOKEN),
        ([f"approvals+{REAL_TOKEN}@evil.example.org"], None),
        ([f"approvals+{REAL_TOKEN}@sub.bevilling.example.org"], None),
        ([f"approvals+{REAL_TOKEN[:-1]}@bevilling.example.org"], None),
        ([f"approvals+{REAL_TOKEN[:-1]}1@bevilling.example.org"], None),  # 1 is not base32
        ([f"approvals+{REAL_TOKEN}x@bevilling.example.org"], None),
        ([f"approvals+{REAL_TOKEN}@bevilling.example.org", f"approvals+{'b' * 26}@{DOMAIN}"], None),
        ([], None),
    ],
)
def test_token_from_recipients(recipients: list[str], token: str | None) -> None:
    assert token_from_recipients(recipients, domain=DOMAIN) == token


@pytest.mark.parametrize(
    ("recipients", "outbox_id"),
    [
        (["bounce+17@bevilling.example.org"], 17),
        (["BOUNCE+4711@Bevilling.Example.Org"], 4711),
        (["bounce+17@other.example.org"], None),
        (["bounce+x17@bevilling.example.org"], None),
        (["bounce+@bevilling.example.org"], None),
        (["bounce+17@bevilling.example.org", "bounce+18@bevilling.example.org"], None),
        (["bounce+17-abcdefgh234567ab@bevilling.example.org"], (17, "abcdefgh234567ab")),
        (["BOUNCE+17-ABCDEFGH234567AB@bevilling.example.org"], (17, "abcdefgh234567ab")),
        (["bounce+17-abcdefgh234567a@bevilling.example.org"], None),
        (["bounce+17-abcdefgh234567ab1@bevilling.example.org"], None),
    ],
)
def test_verp_address(recipients: list[str], outbox_id: int | tuple[int, str] | None) -> None:
    expected = (VerpAddress(outbox_id, None) if isinstance(outbox_id, int)
                else VerpAddress(*outbox_id) if outbox_id else None)
    assert verp_address(recipients, domain=DOMAIN) == expected


# --- hostile input -------------------------------------------------------------------------------

HOSTILE_HEADERS = [
    b'From: "a@b" <',
    b"From: <",
    b'From: "',
    b"From: a@b, c@d",
    b"Cc: undisclosed-recipients:;, Team: a@x.dk, b@y.dk;",
    b"To: :;",
    b"To: =?utf-8?q?=?= <",
    b"Subject: =?unknown-8bit?Q?=E6?=",
    b"Content-Type: text/plain; charset=unknown-8bit",
    b"Content-Type: text/plain; charset*=''",
    b"Content-Type: multipart/mixed; boundary=",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x",
    b"Content-Transfer-Encoding: base64",
    b"Message-ID: <<>>",
    b"References: <a@b> <",
    b"Return-Path: <<>",
    b"Sender: ;",
    b"Date: Mon, 99 Foo 2025 99:99:99 +9999",
]


def mutate(raw: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(raw)
    for position, delete, insert in edits:
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    return bytes(data)


def parse_or_error(raw: bytes) -> ParsedInbound | InboundParseError:
    try:
        return parse_inbound(raw)
    except InboundParseError as exc:
        return exc


def corpus_edits(
    *, max_length: int, pieces: "st.SearchStrategy[bytes]", max_edits: int
) -> "st.SearchStrategy[list[tuple[int, int, bytes]]]":
    """Edits for `mutate`: (position, length to replace, bytes to put there)."""
    return st.lists(
        st.tuples(st.integers(min_value=0, max_value=60_000),
                  st.integers(min_value=0, max_value=max_length), pieces),
        max_size=max_edits,
    )


HOSTILE_LINES = st.sampled_from(HOSTILE_HEADERS).map(lambda h: b"\r\n" + h + b"\r\n")
FUZZ_SETTINGS = settings(deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(FUZZ_SETTINGS, max_examples=200)
@given(
    path=st.sampled_from(CORPUS_FILES),
    edits=corpus_edits(max_length=40, max_edits=6, pieces=st.one_of(
        st.binary(max_size=12),
        HOSTILE_LINES,
        st.sampled_from([b"\r\n\r\n", b"=?", b"?=", b"--", b"<", b">", b";", b":"]),
    )),
)
def test_fuzzed_corpus_raises_nothing_but_inbound_parse_error(
    path: Path, edits: list[tuple[int, int, bytes]]
) -> None:
    outcome = parse_or_error(mutate(path.read_bytes(), edits))
    if isinstance(outcome, InboundParseError):
        assert outcome.reason
        return
    parsed = outcome
    verdict = interpret_reply(extract_new_text(plain=parsed.plain_text, html=parsed.html_text))
    assert verdict.kind in set(VerdictKind)


@pytest.mark.parametrize("header", HOSTILE_HEADERS)
def test_hostile_header_raises_nothing_but_inbound_parse_error(header: bytes) -> None:
    raw = mutate(raw_of("gmail-da-approve"), [(0, 0, header + b"\r\n")])
    outcome = parse_or_error(raw)
    if isinstance(outcome, ParsedInbound):
        assert outcome.raw_sha256 == hashlib.sha256(raw).hexdigest()
    else:
        assert outcome.reason.startswith("unparsable message: ")


# --- every field, as the email package reads it -------------------------------------------------

# sha256 (first 20 hex digits) of repr(astuple(parse_inbound(raw))) per corpus file, as the
# policy.default-only parser (before the fast path) produced them; for malformed-headers the
# digest is of "InboundParseError: <reason>".
FROZEN_DIGESTS = {
    "ambiguous-both-keywords": "19a095bbcfa16b511d74",
    "ambiguous-ja": "c023f90d885d2da77b28",
    "ambiguous-negation": "85dd258bd99df85b917e",
    "apple-mail-da-approve": "e8517b81c472971b5417",
    "approve-with-comment-multiline": "746befe9a08eed167ebb",
    "dsn-bounce-hard": "fd5e1aaf098a888b0fd3",  # + BounceInfo.original_recipient
    "dsn-bounce-soft": "a80528a51605ca84bf94",  # + BounceInfo.original_recipient
    "empty-reply": "e6d25c07cccd78d4e4da",
    "forwarded": "acfaf228b393e3084e56",
    "gmail-da-approve": "87baff5d832f94c890a0",
    "gmail-en-reject": "3941fd694c563bac2133",
    "html-only-approve": "0cb4069382085da2123f",
    "mailing-list": "c61f0f447e044baf8046",
    "malformed-headers": "f9a5fd2de67d14fff9a5",
    "out-of-office-da": "8a42a47c790ddc0608dc",
    "out-of-office-exchange": "e64b78b2c71019acfb03",
    "outlook-de-reject-unknown-quote": "5d444596d7fd70dff33b",
    "outlook-desktop-da-approve": "0e326c1e68e62fc86661",
    "outlook-desktop-en-reject-with-comment": "10a68b5eba734942d641",
    "outlook-web-da-approve": "63823bf0f17236280cf3",
    "spoofed-from": "27aa3f62dce4574658c9",
    "thunderbird-approve": "9ede8a3e910b1431c46e",
    "utf8-subject-encoded-words": "5af4e662fae262f2c908",
    "hostile-outlook-godkend-ikke-endnu": "06e3913753dd3306a4d1",
    "hostile-html-only-hidden-approve": "22fae533eca86f97b6c4",
    "hostile-gmail-borrowed-display-name": "49a49f7773e4cdda4b7a",
}


def digest_of(raw: bytes) -> str:
    try:
        text = repr(astuple(parse_inbound(raw)))
    except InboundParseError as exc:
        text = f"InboundParseError: {exc.reason}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_field_is_as_before(name: str) -> None:
    assert digest_of(raw_of(name)) == FROZEN_DIGESTS[name]


# --- defects, handled where they occur -----------------------------------------------------------


@pytest.mark.parametrize(
    "from_header",
    [
        b"From: Karen Holm <karen.holm@kommune.example.org",  # repaired by the registry
        b"From: k\xc3\xa6ren@kommune.example.org",  # non-ASCII local part
        b"From: a@b@kommune.example.org",
    ],
)
def test_an_author_header_with_an_invalid_header_defect_names_no_author(
    from_header: bytes,
) -> None:
    parsed = parse_inbound(from_header + b"\r\nSubject: x\r\n\r\nGODKEND\r\n")
    assert parsed.from_address is None
    assert parsed.from_display == ""


def test_an_obsolete_but_valid_author_is_kept() -> None:
    parsed = parse_inbound(b"From: K. Holm <karen.holm@kommune.example.org>\r\n\r\nGODKEND\r\n")
    assert parsed.from_address == APPROVER
    assert parsed.from_display == "K. Holm"


def test_an_8bit_display_name_is_read_as_utf8() -> None:
    raw = b"From: S\xc3\xb8ren \xff <soren@kommune.example.org>\r\n\r\nGODKEND\r\n"
    parsed = parse_inbound(raw)
    assert parsed.from_address == "soren@kommune.example.org"
    assert parsed.from_display == "S\u00f8ren \ufffd"


def test_a_repeated_header_counts_once_and_repeated_authors_not_at_all() -> None:
    raw = (
        b"Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\nSubject: GODKEND\r\n"
        b"Subject: AFVIS\r\nFrom: karen.holm@kommune.example.org\r\n"
        b"From: karen.holm@kommune.example.org\r\n\r\nGODKEND\r\n"
    )
    parsed = parse_inbound(raw)
    assert (parsed.message_id, parsed.subject) == ("<first@x>", "GODKEND")
    assert parsed.from_address is None


def nested(depth: int) -> bytes:
    head = b"From: karen.holm@kommune.example.org\r\n"
    body = b"Content-Type: text/plain\r\n\r\nGODKEND\r\n"
    for level in range(depth):
        boundary = b"b%d" % level
        body = (b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--"
                + boundary + b"\r\n" + body + b"--" + boundary + b"--\r\n")
    return head + body


def test_nesting_depth_is_limited() -> None:
    assert parse_inbound(nested(20)).plain_text == "GODKEND"
    with pytest.raises(InboundParseError, match="nested deeper than 20"):
        parse_inbound(nested(21))


def test_a_multipart_without_its_boundary_has_no_body_and_no_error() -> None:
    raw = (b"From: karen.holm@kommune.example.org\r\nContent-Type: multipart/alternative; "
           b"boundary=missing\r\n\r\nGODKEND\r\n")
    parsed = parse_inbound(raw)
    assert (parsed.plain_text, parsed.html_text) == (None, None)


def test_the_number_of_parts_is_limited() -> None:
    def parts(count: int) -> bytes:
        return (b"From: karen.holm@kommune.example.org\r\nContent-Type: multipart/mixed; "
                b"boundary=b\r\n\r\n" + b"--b\r\n\r\nGODKEND\r\n" * count + b"--b--\r\n")

    assert parse_inbound(parts(99)).plain_text == "GODKEND"
    with pytest.raises(InboundParseError, match="more than 100 MIME parts"):
        parse_inbound(parts(100))
