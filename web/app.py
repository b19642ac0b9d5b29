"""The approver's web page: a signed mail link shows the request; a POST decides it once."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from config.settings import Settings, get_settings
from db.engine import get_engine
from domain.approval_state import Verdict
from domain.errors import InputError, RefusedError
from domain.errors import Refusal as Reason
from web.confirm import (
    Refusal,
    check_open,
    decide,
    form_key,
    form_key_ok,
    page_context,
    read_token,
)
from web.texts import REFUSALS, UI
from workflow.confirm_link import Target, act_on_target, read_target
from workflow.context import WorkflowContext, make_context, token_secret
from workflow.events import announce_decision

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FORM_BYTES = 32_768
MAX_COMMENT_CHARS = 4000
MAX_SIGNED_CHARS = 400
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
}
BAD_FORM = {"da": ("Svaret kunne ikke læses", "Brug knapperne på siden. Intet er registreret."),
            "en": ("The answer could not be read",
                   "Please use the buttons on the page. Nothing was recorded.")}


class BadForm(InputError):
    """The POSTed form is missing, malformed or too large (HTTP 400/413)."""

    def __init__(self, status: int = 400) -> None:
        super().__init__(status)
        self.status = status


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class ConfirmPages:
    """The confirm routes' work, run in a worker thread (database and clock at the edge)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = token_secret(settings)
        self.max_age = settings.token_valid_days * 86_400
        self.env = _environment()

    def render(self, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        """A rendered template as an HTML response."""
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status)

    def refused(self, error: RefusedError) -> HTMLResponse:
        """The explanation page for a link that cannot be used (no buttons), chosen by reason."""
        refusal = Refusal.of(error)
        heading, text = REFUSALS[refusal.language][refusal.reason]
        facts = {"key": "", "version": "", "decision": "", "when": "", "stage": "",
                 "state": ""} | refusal.facts
        return self.render("message.html.j2", {
            "lang": refusal.language, "t": UI[refusal.language], "heading": heading,
            "text": text.format(**facts)}, status=refusal.status)

    def bad_form(self, status: int, language: str = "da") -> HTMLResponse:
        """The page for an unreadable POST."""
        heading, text = BAD_FORM[language]
        return self.render("message.html.j2", {"lang": language, "t": UI[language],
                                               "heading": heading, "text": text}, status=status)

    def _token(self, signed: str, now: datetime) -> str:
        if len(signed) > MAX_SIGNED_CHARS:
            raise Refusal(Reason.INVALID)
        return read_token(signed, secret=self.secret, max_age_seconds=self.max_age, now=now)

    def _context(self, now: datetime) -> WorkflowContext:
        return make_context(self.settings, now=now, secret=self.secret)

    def show(self, signed: str) -> HTMLResponse:
        """GET: show the request and the form; never decides anything."""
        now = datetime.now(UTC)

        def shown(session: Session, target: Target) -> dict[str, Any]:
            check_open(target, self._context(now))
            return page_context(session, target)

        try:
            token = self._token(signed, now)
            context = read_target(get_engine(self.settings.database_url), token, shown)
        except RefusedError as refusal:
            return self.refused(refusal)
        context |= {"action": f"/confirm/{signed}",
                    "form_key": form_key(signed, secret=self.secret)}
        return self.render("confirm.html.j2", context)

    def answer(self, signed: str, form: dict[str, str]) -> HTMLResponse:
        """POST: check the link and the form again, then decide in one transaction."""
        now = datetime.now(UTC)
        try:
            token = self._token(signed, now)
        except RefusedError as refusal:
            return self.refused(refusal)
        decision = form.get("decision", "")
        comment = form.get("comment", "").strip()
        if (not form_key_ok(signed, form.get("form_key", ""), secret=self.secret)
                or decision not in ("approve", "reject") or len(comment) > MAX_COMMENT_CHARS):
            return self.bad_form(400)

        def decided(session: Session, target: Target) -> dict[str, Any]:
            ctx = self._context(now)
            check_open(target, ctx)
            return decide(session, target, verdict=Verdict(decision), comment=comment, ctx=ctx)

        try:
            context = act_on_target(get_engine(self.settings.database_url), token, decided)
        except RefusedError as refusal:
            return self.refused(refusal)
        announce_decision(source="confirm-page", request_key=context["request"]["key"])
        return self.render("result.html.j2", context)


async def _read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form (first value of each field); BadForm otherwise."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm(400)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadForm(413)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20,
                          strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadForm(400) from exc
    return {name: values[0] for name, values in fields.items() if values}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web app; settings default to the environment (`BEVILLING_*`)."""
    pages = ConfirmPages(settings or get_settings())
    app = FastAPI(title="bevilling", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]],
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/static/style.css")
    async def stylesheet() -> Response:
        css = (TEMPLATES / "style.css").read_bytes()
        return Response(css, media_type="text/css; charset=utf-8")

    @app.get("/confirm/{signed}")
    async def confirm_page(signed: str) -> HTMLResponse:
        return await run_in_threadpool(pages.show, signed)

    @app.post("/confirm/{signed}")
    async def confirm_answer(signed: str, request: Request) -> HTMLResponse:
        try:
            form = await _read_form(request)
        except BadForm as exc:
            return pages.bad_form(exc.status)
        return await run_in_threadpool(pages.answer, signed, form)

    return app
