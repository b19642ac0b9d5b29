"""The fast wire builder parses back exactly like the policy-driven `compose_message` path."""

import base64
import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mail.mime import compose_message, wire_bytes, wire_message

HEADERS = ("Subject", "From", "To", "Reply-To", "Message-ID", "Date", "In-Reply-To", "References",
           "Auto-Submitted", "X-Auto-Response-Suppress", "X-Bevilling-Ref", "MIME-Version")
ICS = base64.b64encode(
    b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nSUMMARY:Frist for STS-2027 \xc3\xa6\xc3\xb8\xc3\xa5\r\n"
    + b"DESCRIPTION:" + b"x" * 200 + b"\r\nEND:VCALENDAR\r\n").decode("ascii")
DANISH = "abcæøåÆØÅ –€ \"'<>@,;:=?_.\t" + "0123456789"
text = st.text(alphabet=st.sampled_from([*DANISH, "\n", "\r", " ", "é", "😀"]),
               max_size=400)

# Display names as settings and people have them (the stdlib's own parser trips over some
# punctuation-only names on both paths).
names = st.text(alphabet="abcæøåÆØÅ –0123456789éü", max_size=60)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def summary(message: EmailMessage) -> dict[str, Any]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert html is not None
    return {
        "headers": {name: message[name] for name in HEADERS},
        "content_type": message.get_content_type(),
        "plain": plain.get_content(),
        "html": (html.get_content(), html.get_content_type()),
        "attachments": [
            (part.get_filename(), part.get_content_type(), part.get_param("method"),
             part.get_payload(decode=True), part.get_content_disposition())
            for part in message.iter_attachments()
        ],
        "defects": [type(d).__name__ for part in message.walk() for d in part.defects],
    }


def check(**kwargs: Any) -> bytes:
    try:
        slow = wire_bytes(compose_message(**kwargs))
    except ValueError:  # a CR or LF in a header value: the policy refuses it, so must we
        with pytest.raises(ValueError):  # noqa: PT011  (either of the policy's messages)
            wire_message(**kwargs)
        return b""
    fast = wire_message(**kwargs)
    assert summary(parse(fast)) == summary(parse(slow))
    # The same transfer encoding, except QP where the policy picks base64 (or 7bit text holds
    # something that looks like our boundary).
    encodings = [[part["Content-Transfer-Encoding"] for part in parse(raw).walk()]
                 for raw in (fast, slow)]
    assert all(a == b or a == "quoted-printable" for a, b in zip(*encodings, strict=True))
    assert fast.isascii()
    lines = fast.split(b"\r\n")
    assert b"\n" not in fast.replace(b"\r\n", b"")
    assert max(len(line) for line in lines) <= 998
    return fast


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


def test_typical_approval_mail_is_identical_after_parsing() -> None:
    raw = check(**mail())
    assert b"\r\nAuto-Submitted: auto-generated\r\n" in raw
    assert b"\r\nX-Auto-Response-Suppress: OOF, AutoReply\r\n" in raw


def test_long_danish_subject_long_reply_to_and_an_ics_attachment() -> None:
    check(**mail(
        subject="Påmindelse: " + "Ændring af bevilling til ørestad-projektet æøå " * 6,
        headers={"Reply-To": "Bevilling svar <approvals+" + "x" * 90 + "@bevilling.example.org>",
                 "In-Reply-To": "<a@b>", "References": "<a@b> <c@d>"},
        attachments=[{"content_type": "text/calendar", "method": "REQUEST",
                      "filename": "frist.ics", "data": ICS}],
        sender_name="Kommunen"))


def test_unusual_values_take_the_policy_path_and_still_match() -> None:
    check(**mail(sender_name="Bevilling, \"Økonomi\"", subject="=?utf-8?q?not_encoded?= æ",
                 attachments=[{"content_type": "text/calendar", "filename": "frist æ.ics",
                               "data": ICS}]))


def test_a_line_break_in_a_header_is_refused_as_before() -> None:
    check(**mail(subject="Godkend\r\nBcc: x@y"))
    check(**mail(sender_name="Åse\nBcc: x@y"))
    assert check(**mail(subject="Godkend\r\nBcc: x@y")) == b""


def test_a_7bit_body_never_contains_the_boundary() -> None:
    fast = check(**mail(body_text="--=_alt_ and --=_mix_ look like our boundaries\n"))
    assert b"Content-Transfer-Encoding: quoted-printable" in fast


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
