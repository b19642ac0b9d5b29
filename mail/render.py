"""Jinja2 rendering of mails: autoescaped HTML, StrictUndefined, Danish and English variants."""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.errors import ConfigurationError
from mail.formatting import greeting, unbreakable, unbreakable_amounts

SUPPORTED_LANGUAGES = ("da", "en")


class TemplateMissingError(ConfigurationError):
    """A mail template (name, language, part) does not exist."""


@dataclass(frozen=True)
class RenderedMail:
    """Subject and both bodies of one mail."""

    subject: str
    text: str
    html: str


@lru_cache(maxsize=4)
def _environment(templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir / "email")),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship with the code: no stat() of every template file on every mail.
        auto_reload=False,
    )
    env.filters["amount"] = unbreakable  # {{ line.amount_text|amount }}
    env.filters["greeting"] = greeting   # {{ recipient_name|greeting(lang) }}
    env.filters["amounts"] = unbreakable_amounts  # {{ request.justification|amounts }}
    return env


def _render(
    name: str, parts: tuple[str, ...], *, language: str, context: dict[str, Any],
    templates_dir: Path,
) -> dict[str, str]:
    language = language if language in SUPPORTED_LANGUAGES else "da"
    env = _environment(templates_dir)
    rendered: dict[str, str] = {}
    for part in parts:
        template_name = f"{name}.{language}.{part}.j2"
        try:
            template = env.get_template(template_name)
        except Exception as exc:  # jinja2 raises TemplateNotFound; keep one error type for callers
            raise TemplateMissingError(template_name) from exc
        rendered[part] = template.render(**context)
    return rendered


def render_mail(
    name: str, *, language: str, context: dict[str, Any], templates_dir: Path
) -> RenderedMail:
    """Render `<name>.<language>.{subject,txt,html}.j2`; unknown languages fall back to Danish."""
    parts = _render(name, ("subject", "txt", "html"), language=language, context=context,
                    templates_dir=templates_dir)
    return RenderedMail(subject=" ".join(parts["subject"].split()), text=parts["txt"],
                        html=parts["html"])


def render_subject(
    name: str, *, language: str, context: dict[str, Any], templates_dir: Path
) -> str:
    """Only the subject line of `render_mail` (the bodies are rendered later, at delivery)."""
    parts = _render(name, ("subject",), language=language, context=context,
                    templates_dir=templates_dir)
    return " ".join(parts["subject"].split())


def render_bodies(
    name: str, *, language: str, context: dict[str, Any], templates_dir: Path
) -> tuple[str, str]:
    """Only the (text, html) bodies of `render_mail`."""
    parts = _render(name, ("txt", "html"), language=language, context=context,
                    templates_dir=templates_dir)
    return parts["txt"], parts["html"]
