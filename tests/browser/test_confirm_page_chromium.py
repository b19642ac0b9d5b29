"""An approver on a phone: open the mail link in Chromium, comment, approve; a replay is refused."""

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, ViewportSize, expect, sync_playwright
from sqlalchemy import Engine

from config.settings import get_settings
from db.engine import get_engine
from tests.integration.test_confirm_page import FIRST, TITLE, link_path, seed_request, state_of
from web.server import server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
PHONE: ViewportSize = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def engine(app_env: dict[str, str], database_url: str) -> Engine:
    """The test database with DOMEN-DRIFT submitted."""
    engine = get_engine(database_url)
    seed_request(engine, get_settings())
    return engine


@pytest.fixture
def base_url(engine: Engine) -> Iterator[str]:
    """The app under uvicorn in a background thread on a free loopback port."""
    port = _free_port()
    running = server(get_settings(), host="127.0.0.1", port=port)
    thread = threading.Thread(target=running.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive(), "uvicorn did not stop"


def test_approve_on_a_phone_then_a_replay_is_refused(
    engine: Engine, base_url: str, tmp_path: Path,
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium "
                    "(make test installs it); never `playwright install`")
    url = base_url + link_path(engine, FIRST)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                          device_scale_factor=2, locale="da-DK")
            page = context.new_page()

            def note(message: ConsoleMessage) -> None:
                if "Content Security Policy" in message.text or "Refused to" in message.text:
                    problems.append(message.text)

            page.on("console", note)
            opened = page.goto(url)
            assert opened is not None
            assert opened.status == 200
            expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
            rows = page.locator("table.amounts tbody tr")
            expect(rows).to_have_count(4)
            expect(rows.first).to_contain_text("1,3–2 mio. kr.")
            expect(page.locator("table.amounts tfoot")).to_contain_text("5,2–8 mio. kr.")
            approve = page.get_by_role("button", name="Godkend")
            box = approve.bounding_box()
            assert box is not None
            assert box["height"] >= 44, box  # a thumb-sized button
            colour = approve.evaluate("b => getComputedStyle(b).backgroundColor")
            assert colour == "rgb(27, 110, 46)", "the stylesheet was not applied (CSP?)"
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"page scrolls sideways: {width}px"
            form_key = page.locator("input[name=form_key]").get_attribute("value")
            assert form_key
            page.screenshot(path=str(tmp_path / "confirm.png"), full_page=True)
            assert state_of(engine).step[1] == "pending"

            page.get_by_label("Kommentar (valgfri)").fill("Godkendt fra telefonen")
            with page.expect_navigation():
                approve.click()
            expect(page.get_by_role("heading", level=1)).to_have_text(
                "Din godkendelse er registreret")
            expect(page.locator("p.next")).to_contain_text("Stadsdirektøren")
            shot = tmp_path / "approved.png"
            page.screenshot(path=str(shot), full_page=True)
            decided = state_of(engine)
            assert decided.step[1:] == ("approved", "approve", "link", "Godkendt fra telefonen")

            replay = page.request.post(url, form={"form_key": form_key, "decision": "approve",
                                                  "comment": "igen"})
            assert replay.status == 410
            assert "Du har allerede svaret" in replay.text()
            back = page.go_back()
            assert back is not None
            assert back.status == 410
            expect(page.get_by_role("heading", level=1)).to_have_text("Du har allerede svaret")
            expect(page.get_by_role("button")).to_have_count(0)
            assert state_of(engine) == decided
        finally:
            browser.close()
    assert shot.exists()
    assert shot.stat().st_size > 1000
    assert (tmp_path / "confirm.png").exists()
    assert not problems, problems  # e.g. the stylesheet blocked by our own CSP
