"""Outgoing MIME (`compose_message` + `wire_bytes`): what the bytes hold and how they look."""

import base64
import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mail.mime import compose_message, wire_bytes

ICS_BYTES = (
    b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nSUMMARY:Frist for STS-2027 \xc3\xa6\xc3\xb8\xc3\xa5\r\n"
    + b"DESCRIPTION:" + b"x" * 200 + b"\r\nEND:VCALENDAR\r\n")
ICS = base64.b64encode(ICS_BYTES).decode("ascii")
DANISH = "abcæøåÆØÅ –€ \"'<>@,;:=?_.\t" + "0123456789"
text = st.text(alphabet=st.sampled_from([*DANISH, "\n", "\r", " ", "é", "😀"]),
               max_size=400)

# Display names as settings and people have them (the stdlib's own parser trips over some
# punctuation-only names).
names = st.text(alphabet="abcæøåÆØÅ –0123456789éü", max_size=60)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def lines(value: str) -> list[bytes]:
    # What set_content keeps of a text: its lines (CR, LF or CRLF ends), not the line ends.
    return value.encode("utf-8").splitlines()


def check(*, subject_back: str | None = None, **kwargs: Any) -> bytes:
    """Build the mail, check the wire format, parse it back and compare with the input."""
    raw = wire_bytes(compose_message(**kwargs))
    assert raw == wire_bytes(compose_message(**kwargs))  # boundaries fixed by the Message-ID
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = parse(raw)
    assert [type(d).__name__ for part in message.walk() for d in part.defects] == []
    assert message["Subject"] == (subject_back or kwargs["subject"])
    assert message["Message-ID"] == kwargs["message_id"]
    assert message["To"].addresses[0].addr_spec == kwargs["recipients"][0]
    author = message["From"].addresses[0]
    # Blanks in a display name are not kept as they were: the reader joins the encoded words
    # of a long non-ASCII name with a space (the email package's, not ours to fix).
    assert ("".join(author.display_name.split()), author.addr_spec) == (
        "".join(kwargs["sender_name"].split()), kwargs["sender"])
    for name, value in kwargs["headers"].items():
        # As the registry reads the value we gave (Reply-To: a mailbox, " <a@b>" included).
        given_value = email.policy.default.header_factory(name, value)
        assert getattr(message[name], "addresses", message[name]) == getattr(
            given_value, "addresses", given_value)
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert lines(plain.get_content()) == lines(kwargs["body_text"]) or not kwargs["body_text"]
    assert lines(html.get_content()) == lines(kwargs["body_html"]) or not kwargs["body_html"]
    assert [
        (part.get_filename(), part.get_content_type(), part.get_param("method"),
         part.get_payload(decode=True))
        for part in message.iter_attachments()
    ] == [
        (a["filename"], a["content_type"], a.get("method"), base64.b64decode(a["data"]))
        for a in kwargs["attachments"]
    ]
    return raw


def mail(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "recipients": ["afdelingschef@kommune.example.org"],
        "subject": "Godkendelse: STS-2027 – Cybersikkerhed, 1.250.000 kr.",
        "message_id": "<bev-0123456789abcdef0123@bevilling.example.org>",
        "ref": "step:17", "body_text": "Kære Åse\n\nSvar GODKEND eller AFVIS.\n",
        "body_html": "<p>Kære Åse</p><p>Svar <b>GODKEND</b> – tak.</p>", "attachments": [],
        "headers": {"Reply-To": "approvals+" + "t" * 43 + "@bevilling.example.org",
                    "In-Reply-To": "<request-sts-2027@bevilling.example.org>",
                    "References": "<request-sts-2027@bevilling.example.org>"},
        "sender": "bevilling@bevilling.example.org",
        "sender_name": "Bevilling – Borgmesterens Afdeling",
        "date": datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
    }
    values.update(overrides)
    return values


def test_typical_approval_mail() -> None:
    raw = check(**mail())
    assert b"\r\nAuto-Submitted: auto-generated\r\n" in raw
    assert b"\r\nX-Auto-Response-Suppress: OOF, AutoReply\r\n" in raw
    assert b"\r\nX-Bevilling-Ref: step:17\r\n" in raw


def test_long_danish_subject_long_reply_to_and_an_ics_attachment() -> None:
    check(**mail(
        subject="Påmindelse: " + "Ændring af bevilling til ørestad-projektet æøå " * 6,
        headers={"Reply-To": "Bevilling svar <approvals+" + "x" * 90 + "@bevilling.example.org>",
                 "In-Reply-To": "<a@b>", "References": "<a@b> <c@d>"},
        attachments=[{"content_type": "text/calendar", "method": "REQUEST",
                      "filename": "frist.ics", "data": ICS}],
        sender_name="Kommunen"))


def test_unusual_values() -> None:
    # The policy writes an encoded-word lookalike as it is, so it reads back decoded.
    check(**mail(sender_name="Bevilling, \"Økonomi\"", subject="=?utf-8?q?not_encoded?= æ",
                 attachments=[{"content_type": "text/calendar", "filename": "frist æ.ics",
                               "data": ICS}]), subject_back="not encoded æ")


@pytest.mark.parametrize(
    "override", [{"subject": "Godkend\r\nBcc: x@y"}, {"sender_name": "Åse\nBcc: x@y"}]
)
def test_a_line_break_in_a_header_is_refused(override: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (either of the policy's messages)
        compose_message(**mail(**override))


def test_a_7bit_body_never_contains_the_boundary() -> None:
    first = compose_message(**mail()).get_boundary()
    assert first is not None
    raw = check(**mail(body_text=f"--{first} looks like our boundary\n"))
    assert parse(raw).get_boundary() != first


@settings(max_examples=200, deadline=None)
@given(subject=text, body_text=text, body_html=text, name=names,
       ics=st.booleans(), reply_to=st.booleans(), minutes=st.integers(0, 10**6))
def test_round_trip_property(
    subject: str, body_text: str, body_html: str, name: str, ics: bool, reply_to: bool,
    minutes: int,
) -> None:
    subject = " ".join(subject.split()) or "x"  # render_mail normalises subjects this way
    headers = {"In-Reply-To": "<t@x>", "References": "<t@x>"}
    if reply_to:
        headers["Reply-To"] = f"{name.strip()[:30]} <approvals+tok@x.example>"
    check(**mail(subject=subject, body_text=body_text, body_html=body_html,
                 sender_name=name, headers=headers,
                 date=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
                 attachments=[{"content_type": "text/calendar", "method": "REQUEST",
                               "filename": "invite.ics", "data": ICS}] if ics else []))
