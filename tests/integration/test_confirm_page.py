"""The confirm page against a real database: GET shows, POST decides once, stale links explain."""

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from config.settings import Settings, get_settings
from db.engine import get_engine, transaction
from loading.register_file import read_register
from models import ApprovalStep, ApprovalToken, AuditEvent, BudgetRequest, Outbox, Person
from tests.support.factories import SEED, load_file
from web.app import create_app
from workflow.context import make_context
from workflow.outbox import stored_message
from workflow.request_load import apply_requests
from workflow.routing import resubmit_revised, submit
from workflow.tokens import LinkError, read_link, sign_link

KEY = "DOMEN-DRIFT"
TITLE = "Domen – ordinær drift og vedligehold"
FIRST = "karen.holm@kommune.example.org"
SECOND = "stadsdirektoer@kommune.example.org"
REQUESTER = "medborgerskab@kommune.example.org"
LINK = re.compile(r"/confirm/([A-Za-z0-9._-]+)")
SECRET = "test-secret-not-for-production"


def seed_request(engine: Engine, settings: Settings, key: str = KEY) -> None:
    """Seed people, grants and requests, and submit `key` (its first approval mail is queued)."""
    load_file(engine, SEED)
    now = datetime.now(UTC) - timedelta(seconds=5)
    with transaction(engine) as session:
        apply_requests(session, read_register(SEED), now=now)
        submit(session, key, ctx=make_context(settings, now=now))


def mails(engine: Engine) -> list[tuple[str, str, str]]:
    """(recipient, kind, text body) of every outbox row, oldest first."""
    templates = Settings().templates_dir
    with Session(engine) as session:
        rows = session.execute(select(Outbox).order_by(col(Outbox.id))).scalars().all()
        return [(", ".join(row.recipients), row.kind,
                 stored_message(row, templates_dir=templates)[0]) for row in rows]


def link_path(engine: Engine, recipient: str) -> str:
    """/confirm/<signed> from the newest approval mail to `recipient`."""
    bodies = [body for to, kind, body in mails(engine)
              if to == recipient and kind == "approval_request"]
    assert bodies, f"no approval mail to {recipient}"
    found = LINK.search(bodies[-1])
    assert found is not None
    return f"/confirm/{found.group(1)}"


def form_of(html: str) -> dict[str, str]:
    """The hidden form key of a rendered confirm page."""
    found = re.search(r'name="form_key" value="([0-9a-f]{64})"', html)
    assert found is not None, "no form on the page"
    return {"form_key": found.group(1)}


@dataclass(frozen=True)
class State:
    """What a link may change: the step, its token, the outbox and the audit log."""

    step: tuple[Any, ...]
    token_used: bool
    outbox: int
    audit: int
    request_state: str


def state_of(engine: Engine, recipient: str = FIRST) -> State:
    """The newest step of `recipient` on the request and what surrounds it."""
    with Session(engine) as session:
        person = session.execute(select(col(Person.id)).where(
            col(Person.email) == recipient)).scalar_one()
        step = session.execute(select(ApprovalStep).where(
            col(ApprovalStep.approver_id) == person).order_by(
            col(ApprovalStep.id).desc())).scalars().first()
        assert step is not None
        used = session.execute(select(col(ApprovalToken.used_at)).where(
            col(ApprovalToken.step_id) == step.id)).scalars().all()
        return State(
            step=(step.id, step.state, step.decision, step.channel, step.comment),
            token_used=any(u is not None for u in used),
            outbox=session.execute(select(func.count()).select_from(Outbox)).scalar_one(),
            audit=session.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
            request_state=session.execute(select(col(BudgetRequest.state)).where(
                col(BudgetRequest.key) == KEY)).scalar_one())


@pytest.fixture
def engine(app_env: dict[str, str], database_url: str) -> Engine:
    """The test database with DOMEN-DRIFT submitted."""
    engine = get_engine(database_url)
    seed_request(engine, get_settings())
    return engine


@pytest.fixture
def client(engine: Engine) -> TestClient:
    """A client of the app built from the test environment."""
    return TestClient(create_app(), follow_redirects=False)


def test_get_shows_the_request_and_changes_nothing(engine: Engine, client: TestClient) -> None:
    before = state_of(engine)
    path = link_path(engine, FIRST)
    for _ in range(2):  # a mail scanner and then the approver
        page = client.get(path)
        assert page.status_code == 200
    html = page.text
    for text in (TITLE, KEY, "Afdelingschef", "Kære Karen Holm", "1,3–2 mio. kr.", "løbende",
                 "2026", "2029", "I alt", "5,2–8 mio. kr.", "Svarfrist", "Medborgerskabschefen",
                 "ordinær daglig drift", "ingen endnu", "Godkend", "Afvis",
                 'name="viewport"'):
        assert text in html, text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert state_of(engine) == before
    assert before.step[1] == "pending"
    assert not before.token_used


def test_post_approve_decides_once_and_mails_the_next_approver(
    engine: Engine, client: TestClient,
) -> None:
    path = link_path(engine, FIRST)
    form = form_of(client.get(path).text)
    done = client.post(path, data=form | {"decision": "approve", "comment": "Fint  "})
    assert done.status_code == 200
    assert "Din godkendelse er registreret" in done.text
    assert "sendes nu videre til: Stadsdirektøren" in done.text
    after = state_of(engine)
    assert after.step[1:] == ("approved", "approve", "link", "Fint")
    assert after.token_used
    assert [kind for to, kind, _ in mails(engine) if to == SECOND] == ["approval_request"]
    assert state_of(engine, SECOND).step[1] == "pending"

    again = client.post(path, data=form | {"decision": "reject", "comment": "nej alligevel"})
    assert again.status_code == 410
    assert "Du har allerede svaret" in again.text
    assert "godkendt" in again.text
    assert "via link" in again.text
    assert 'name="decision"' not in again.text
    assert state_of(engine) == after
    shown = client.get(path)
    assert shown.status_code == 410
    assert "Godkend</button>" not in shown.text


def test_two_simultaneous_posts_decide_once(engine: Engine, client: TestClient) -> None:
    path = link_path(engine, FIRST)
    form = form_of(client.get(path).text)
    start = threading.Barrier(2)
    codes: list[int] = []

    def press(decision: str) -> None:
        start.wait()
        codes.append(client.post(path, data=form | {"decision": decision}).status_code)

    threads = [threading.Thread(target=press, args=(d,)) for d in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [200, 410]
    decided = state_of(engine)
    assert decided.step[2] == {"approved": "approve", "rejected": "reject"}[decided.step[1]]
    sent = [(to, kind) for to, kind, _ in mails(engine)]
    assert ((SECOND, "approval_request") in sent) != ((REQUESTER, "approval_outcome") in sent)


def test_reject_ends_the_request_and_tells_the_requester(
    engine: Engine, client: TestClient,
) -> None:
    path = link_path(engine, FIRST)
    form = form_of(client.get(path).text)
    done = client.post(path, data=form | {"decision": "reject", "comment": "For dyrt"})
    assert done.status_code == 200
    assert "Din afvisning er registreret" in done.text
    assert "Ansøgningen er afvist. Medborgerskabschefen får besked på mail." in done.text
    after = state_of(engine)
    assert after.request_state == "rejected"
    assert after.step[1:] == ("rejected", "reject", "link", "For dyrt")
    sent = [(to, kind) for to, kind, _ in mails(engine)]
    assert (REQUESTER, "approval_outcome") in sent
    assert all(to != SECOND for to, _ in sent)


@pytest.mark.parametrize("tamper", ["signature-char", "token-char", "other-secret", "garbage",
                                    "too-long"])
def test_a_forged_link_is_404_and_changes_nothing(
    engine: Engine, client: TestClient, tamper: str,
) -> None:
    path = link_path(engine, FIRST)
    signed = path.rsplit("/", 1)[1]
    token = read_link(signed, secret=SECRET, max_age_seconds=3600, now=datetime.now(UTC))
    forged = {
        # Not the last character: its low bits are base64 padding, and "A" vs "B" there
        # decodes to the same signature bytes (a quarter of all links ended in "A").
        "signature-char": signed[:-3] + ("A" if signed[-3] != "A" else "B") + signed[-2:],
        "token-char": ("b" if signed[0] != "b" else "c") + signed[1:],
        "other-secret": sign_link(token, secret="someone-elses-secret", now=datetime.now(UTC)),
        "garbage": "not-a-link",
        "too-long": signed + "x" * 500,
    }[tamper]
    before = state_of(engine)
    page = client.get(f"/confirm/{forged}")
    assert page.status_code == 404
    assert "Linket virker ikke" in page.text
    assert "Godkend" not in page.text
    form = {"form_key": "0" * 64, "decision": "approve", "comment": ""}
    assert client.post(f"/confirm/{forged}", data=form).status_code == 404
    assert state_of(engine) == before


def test_an_expired_token_is_410_and_changes_nothing(engine: Engine, client: TestClient) -> None:
    path = link_path(engine, FIRST)
    form = form_of(client.get(path).text)
    with transaction(engine) as session:
        session.execute(update(ApprovalToken).values(
            expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    before = state_of(engine)
    page = client.get(path)
    assert page.status_code == 410
    assert "Linket er udløbet" in page.text
    late = client.post(path, data=form | {"decision": "approve"})
    assert late.status_code == 410
    assert "Linket er udløbet" in late.text
    assert state_of(engine) == before


def test_a_link_older_than_its_max_age_is_410(engine: Engine, client: TestClient) -> None:
    now = datetime.now(UTC)
    token = read_link(link_path(engine, FIRST).rsplit("/", 1)[1], secret=SECRET,
                      max_age_seconds=3600, now=now)
    old = sign_link(token, secret=SECRET,
                    now=now - timedelta(days=get_settings().token_valid_days + 1))
    page = client.get(f"/confirm/{old}")
    assert page.status_code == 410
    assert "Linket er udløbet" in page.text


def test_a_revised_request_makes_the_old_link_outdated(
    engine: Engine, client: TestClient, tmp_path: Path,
) -> None:
    old_path = link_path(engine, FIRST)
    form = form_of(client.get(old_path).text)
    document = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    request = next(r for r in document["requests"] if r["key"] == KEY)
    request["lines"][0]["amount_max"] = 2_500_000
    revised = tmp_path / "revised.yaml"
    revised.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
                       encoding="utf-8")
    now = datetime.now(UTC) - timedelta(seconds=2)
    with transaction(engine) as session:
        report = apply_requests(session, read_register(revised), now=now)
        assert len(report.revised_pending_ids) == 1
        resubmit_revised(session, report.revised_pending_ids[0],
                         ctx=make_context(get_settings(), now=now))
    page = client.get(old_path)
    assert page.status_code == 410
    assert "Ansøgningen er blevet ændret" in page.text
    assert "Godkend" not in page.text
    before = state_of(engine)
    late = client.post(old_path, data=form | {"decision": "approve"})
    assert late.status_code == 410
    assert "Ansøgningen er blevet ændret" in late.text
    assert state_of(engine) == before
    new_path = link_path(engine, FIRST)
    assert new_path != old_path
    fresh = client.get(new_path)
    assert fresh.status_code == 200
    assert "Ændret siden sidste version" in fresh.text


def test_request_text_and_comments_are_escaped(engine: Engine, client: TestClient) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with transaction(engine) as session:
        session.execute(update(BudgetRequest).where(col(BudgetRequest.key) == KEY).values(
            title=f"Titel {hostile}", justification=f"Fordi {hostile}"))
    path = link_path(engine, FIRST)
    page = client.get(path)
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    done = client.post(path, data=form_of(page.text) | {"decision": "approve",
                                                         "comment": hostile})
    assert done.status_code == 200
    assert "<script>" not in done.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in done.text


@pytest.mark.parametrize("form", [
    {"decision": "maybe"}, {"decision": ""}, {}, {"decision": "approve", "comment": "x" * 4001},
    {"decision": "approve", "form_key": "f" * 64},
])
def test_a_bad_form_is_400_and_changes_nothing(
    engine: Engine, client: TestClient, form: dict[str, str],
) -> None:
    path = link_path(engine, FIRST)
    real = form_of(client.get(path).text)
    before = state_of(engine)
    answer = client.post(path, data=real | form)
    assert answer.status_code == 400
    assert "Intet er registreret" in answer.text
    assert client.post(path, content=b"decision=approve",
                       headers={"content-type": "text/plain"}).status_code == 400
    assert state_of(engine) == before


def test_english_approvers_get_english_pages(engine: Engine, client: TestClient) -> None:
    with transaction(engine) as session:
        session.execute(update(Person).where(col(Person.email) == FIRST).values(language="en"))
    path = link_path(engine, FIRST)
    page = client.get(path)
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "Approve" in page.text
    assert "DKK 1.3–2 million" in page.text
    done = client.post(path, data=form_of(page.text) | {"decision": "approve"})
    assert "Your approval has been recorded" in done.text


def test_healthz(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.text == "ok"
    assert answer.headers["x-frame-options"] == "DENY"


def test_links_mailed_in_the_earlier_format_still_read() -> None:
    # Before, the token travelled in an itsdangerous serializer payload (same secret and salt).
    token = "abcdefghijklmnopqrstuvwxyz"
    earlier = URLSafeTimedSerializer(SECRET, salt="bevilling-confirm-link").dumps({"t": token})
    now = datetime.now(UTC)
    assert read_link(earlier, secret=SECRET, max_age_seconds=3600, now=now) == token
    signed = sign_link(token, secret=SECRET, now=now)
    assert read_link(signed, secret=SECRET, max_age_seconds=3600, now=now) == token
    with pytest.raises(LinkError, match="expired"):
        read_link(signed, secret=SECRET, max_age_seconds=3600, now=now + timedelta(hours=2))
    not_a_token = URLSafeTimedSerializer(SECRET, salt="bevilling-confirm-link").dumps({"t": "x"})
    with pytest.raises(LinkError, match="invalid"):
        read_link(not_a_token, secret=SECRET, max_age_seconds=3600, now=now)
