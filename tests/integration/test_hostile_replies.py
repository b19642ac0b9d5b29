"""A "yes, but not yet", a disguised word or hidden HTML never decides: through `ingest_raw`
and through the SMTP receiver, in the forms Outlook, Gmail and Apple Mail write.

Each reply goes to the live step's real Reply-To token from Karen Holm's own address; a refused
one is quarantined as ambiguous, the step stays pending and Karen gets the Danish clarifying mail.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime

import aiosmtplib
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from config.settings import Settings
from models import InboundMessage
from receiver.smtp_server import start_inbound_server
from tests.support.approvals import (
    SUBMITTED,
    OutboxMail,
    build_reply,
    ingest,
    load_seed,
    make_settings,
    outbox,
    steps_of,
    submit_request,
)
from tests.support.smtp_server import free_port

KEY = "STS-2027"
KAREN = "karen.holm@kommune.example.org"

PLAIN_YES_BUT = [
    "Godkend – ikke endnu",
    "GODKEND, ikke",
    "APPROVE - not yet",
    "GODKEND (ikke)",
    "Godkendt! Nej vent.",
    "GODKEND \u0456kke",
    "GODKEND\nNej vent, jeg skal lige tale med Mads først.",
    "Approve\n\nOn second thought, let's discuss it Monday.",
    "GODKEND\nf\u043ertryd",  # Cyrillic о in a retraction below the keyword
]

HTML_HIDDEN = {
    "display-none": '<div style="display:none">GODKEND</div><p>Lad os tale om det på mødet</p>',
    "visibility": '<p><span style="visibility: hidden">APPROVE</span></p><p>Vi ses</p>',
    "hidden-attribute": "<div hidden>GODKEND</div><div>Hvad med 2028?</div>",
    "zero-font": '<p>GODKEND<span style="font-size:0px"> ikke</span></p>',
    "outlook-mso-hide": ('<div class="WordSection1"><p class="MsoNormal">GODKEND'
                         '<span style="mso-hide:all;font-size:1pt"> ikke endnu</span></p></div>'),
    "gmail-preheader": ('<div dir="ltr"><div style="max-height:0;overflow:hidden">GODKEND</div>'
                        "Jeg ringer i morgen.</div>"),
}
HTML_SHOWN_STILL_DECIDES = {
    "comment-dropped": "<p>AFVIS</p><!-- GODKEND -->",
    "style-dropped": "<style>p:after{content:'GODKEND'}</style><p>AFVIS – for dyrt</p>",
    "apple": '<html><body dir="auto"><div>AFVIS<br><br>Ikke prioriteret i år.</div></body></html>',
}


@dataclass(frozen=True)
class Live:
    engine: Engine
    settings: Settings
    approval: OutboxMail


def _submitted(engine: Engine, database_url: str, now: datetime) -> Live:
    settings = make_settings(database_url)
    load_seed(engine)
    submit_request(engine, KEY, settings=settings, now=now)
    approval = outbox(engine, kind="approval_request")[0]
    assert approval.recipient == KAREN
    return Live(engine, settings, approval)


@pytest.fixture
def live(engine: Engine, database_url: str) -> Live:
    return _submitted(engine, database_url, SUBMITTED)


@pytest.fixture
def live_now(engine: Engine, database_url: str) -> Live:
    """Submitted now: the receiver reads the clock, and the token must not have expired."""
    return _submitted(engine, database_url, datetime.now(UTC))


def html_reply(live: Live, html: str, *, n: int) -> bytes:
    original = live.approval.message
    reply = EmailMessage(policy=default_policy)
    reply["From"] = f"Karen Holm <{KAREN}>"
    reply["To"] = str(original["Reply-To"])
    reply["Subject"] = "SV: " + str(original["Subject"])
    reply["Date"] = format_datetime(SUBMITTED)
    reply["Message-ID"] = f"<html-{n}@kommune.example.org>"
    reply["In-Reply-To"] = str(original["Message-ID"]).strip()
    reply.set_content(f"<html><body>{html}</body></html>", subtype="html")
    return reply.as_bytes()


def _assert_ambiguous(live: Live, outcome: str, mails_before: int) -> None:
    assert outcome == "quarantined-ambiguous"
    assert [s.state for s in steps_of(live.engine, KEY)] == ["pending"]
    notices = [m for m in outbox(live.engine)[mails_before:] if m.kind.startswith("notice_")]
    assert [m.recipient for m in notices] == [KAREN]


@pytest.mark.parametrize("text", PLAIN_YES_BUT)
def test_yes_but_not_yet_through_ingestion(live: Live, text: str) -> None:
    before = len(outbox(live.engine))
    raw = build_reply(live.approval.message, sender=KAREN, text=text)
    result = ingest(live.engine, raw, settings=live.settings, now=SUBMITTED)
    _assert_ambiguous(live, result.outcome, before)


@pytest.mark.parametrize("name", sorted(HTML_HIDDEN))
def test_hidden_html_through_ingestion(live: Live, name: str) -> None:
    before = len(outbox(live.engine))
    result = ingest(live.engine, html_reply(live, HTML_HIDDEN[name], n=1),
                    settings=live.settings, now=SUBMITTED)
    _assert_ambiguous(live, result.outcome, before)


@pytest.mark.parametrize("name", sorted(HTML_SHOWN_STILL_DECIDES))
def test_what_is_shown_still_decides(live: Live, name: str) -> None:
    result = ingest(live.engine, html_reply(live, HTML_SHOWN_STILL_DECIDES[name], n=1),
                    settings=live.settings, now=SUBMITTED)
    assert (result.outcome, result.detail) == ("decision", "reject")
    assert [s.state for s in steps_of(live.engine, KEY)] == ["rejected"]


BORROWED_FROM = [
    "karen.holm@kommune.example.org <forger@x.example.org>",
    '"karen.holm@kommune.example.org" <forger@x.example.org>',
    '"Karen Holm <karen.holm@kommune.example.org>" <forger@x.example.org>',
]


@pytest.mark.parametrize("sender", BORROWED_FROM)
def test_a_borrowed_display_name_is_quarantined(live: Live, sender: str) -> None:
    raw = build_reply(live.approval.message, sender=KAREN, text="GODKEND")
    raw = raw.replace(f"From: {KAREN}".encode(), f"From: {sender}".encode(), 1)
    assert f"From: {sender}".encode() in raw
    result = ingest(live.engine, raw, settings=live.settings, now=SUBMITTED)
    assert (result.outcome, result.detail) == ("quarantined", "no usable From address")
    assert [s.state for s in steps_of(live.engine, KEY)] == ["pending"]


def test_a_plain_reject_with_an_ordinary_comment_decides(live: Live) -> None:
    raw = build_reply(live.approval.message, sender=KAREN, text="AFVIS\nIkke prioriteret i år.")
    result = ingest(live.engine, raw, settings=live.settings, now=SUBMITTED)
    assert (result.outcome, result.detail) == ("decision", "reject")


@pytest.fixture
def receiver(live_now: Live) -> Iterator[tuple[str, int]]:
    live = live_now
    port = free_port()
    controller = start_inbound_server(live.engine, live.settings, host="127.0.0.1", port=port,
                                      timeout_seconds=10)
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()


async def test_hostile_replies_through_the_smtp_receiver(
    live_now: Live, receiver: tuple[str, int],
) -> None:
    live = live_now
    reply_to = str(live.approval.message["Reply-To"])
    before = len(outbox(live.engine))
    hostile = [build_reply(live.approval.message, sender=KAREN, text=text)
               for text in PLAIN_YES_BUT]
    hostile += [html_reply(live, html, n=n) for n, html in enumerate(HTML_HIDDEN.values())]
    for raw in hostile:
        await aiosmtplib.send(raw, hostname=receiver[0], port=receiver[1], sender=KAREN,
                              recipients=[reply_to], timeout=10)
    assert [s.state for s in steps_of(live.engine, KEY)] == ["pending"]
    notices = [m for m in outbox(live.engine)[before:] if m.kind.startswith("notice_")]
    assert notices
    assert {m.recipient for m in notices} == {KAREN}
    assert "GODKEND" in notices[0].body_text  # the Danish clarifying mail says what to write
    borrowed = build_reply(live.approval.message, sender=KAREN, text="GODKEND").replace(
        f"From: {KAREN}".encode(), f"From: {BORROWED_FROM[0]}".encode(), 1)
    await aiosmtplib.send(borrowed, hostname=receiver[0], port=receiver[1], sender=KAREN,
                          recipients=[reply_to], timeout=10)
    with Session(live.engine) as session:
        outcomes = session.execute(select(col(InboundMessage.outcome)).order_by(
            col(InboundMessage.id))).scalars().all()
    assert sorted(outcomes) == sorted(["quarantined-ambiguous"] * len(hostile) + ["quarantined"])
    plain = build_reply(live.approval.message, sender=KAREN, text="GODKEND\nMvh Karen")
    await aiosmtplib.send(plain, hostname=receiver[0], port=receiver[1], sender=KAREN,
                          recipients=[reply_to], timeout=10)
    assert next(s.state for s in steps_of(live.engine, KEY)) == "approved"


OURS = "mx.bevilling.example.org"
AUTH_RESULTS = {
    "spf-for-the-forger": (f"{OURS}; spf=pass smtp.mailfrom=forger@x.example.org; "
                           "dkim=pass header.d=x.example.org", "quarantined-authentication"),
    "dmarc-for-another-domain": (f"{OURS}; dmarc=pass header.from=x.example.org",
                                 "quarantined-authentication"),
    "dmarc-in-a-comment": (f"{OURS}; spf=pass (dmarc=pass header.from=kommune.example.org) "
                           "smtp.mailfrom=x.example.org", "quarantined-authentication"),
    "dmarc-in-a-value": (f'{OURS}; spf=pass smtp.mailfrom="dmarc=pass"@x.example.org',
                         "quarantined-authentication"),
    "untrusted-id": ("mx.x.example.org; dmarc=pass header.from=kommune.example.org",
                     "quarantined-authentication"),
    "aligned": (f"{OURS}; spf=pass smtp.mailfrom=kommune.example.org; "
                "dmarc=pass (p=quarantine) header.from=kommune.example.org", "decision"),
}


@pytest.mark.parametrize("name", sorted(AUTH_RESULTS))
def test_only_aligned_dmarc_passes_require_pass(
    engine: Engine, database_url: str, name: str,
) -> None:
    live = _submitted(engine, database_url, SUBMITTED)
    settings = make_settings(database_url, auth_policy="require-pass",
                             trusted_authserv_ids=[OURS])
    header, expected = AUTH_RESULTS[name]
    raw = build_reply(live.approval.message, sender=KAREN, text="GODKEND",
                      extra_headers={"Authentication-Results": header})
    result = ingest(live.engine, raw, settings=settings, now=SUBMITTED)
    assert result.outcome == expected, result
