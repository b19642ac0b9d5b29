"""Reading a reply as its approver saw it, then by the domain's rules (`domain.replies`).

Two library checks sit in front of the pure rules, because they need libraries the domain may
not import:

- **Only what a person sees counts.** The HTML part is read by BeautifulSoup (`html.parser`
  builder: no C dependency) and every element a mail client does not display is taken out —
  `<script>`, `<style>`, `<template>`, `<head>`, comments, the `hidden` attribute, and inline
  styles `display:none`, `visibility:hidden`, `font-size:0`, `opacity:0`, `max-height:0`,
  `mso-hide:all`. Hidden text with letters or digits in it is replaced by `HIDDEN_MARK`, so that
  when it sits in the *new* text (not in the cut quote) the reply is ambiguous: text that is in
  the mail but not shown never decides, and never silently adds to a decision either. The
  domain's stdlib converter (`domain.reply_html`) then reads what is left, with its quote cutters.
- **Confusables.** A word of the new text that mixes scripts with confusable letters (a Cyrillic
  "о" in "fоrtryd") makes a decision ambiguous; the check is `confusable_homoglyphs`'
  `is_dangerous`, the Unicode confusables data kept by its maintainers rather than a hand table.
  (The domain's first-line rule already refuses any non-Latin letter on the keyword's line.)
"""

import re
from functools import lru_cache

from bs4 import BeautifulSoup, Comment, Tag
from confusable_homoglyphs import confusables

from domain.replies import (
    ReplyVerdict,
    VerdictKind,
    extract_new_text,
    interpret_reply,
    normalize_text,
)

__all__ = ["HIDDEN_MARK", "read_reply", "visible_html"]

HIDDEN_MARK = "[bevilling: skjult tekst / hidden text]"

_NEVER_SHOWN = ("script", "style", "template", "head", "noscript", "object", "embed", "iframe")
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:"
    r"display\s*:\s*none"
    r"|visibility\s*:\s*(?:hidden|collapse)"
    r"|font-size\s*:\s*0*(?:\.0*)?(?:px|pt|em|rem|%|ex|ch|vw|vh)?\s*(?:!important\s*)?(?:;|$)"
    r"|opacity\s*:\s*0*(?:\.0*)?\s*(?:!important\s*)?(?:;|$)"
    r"|max-height\s*:\s*0*(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:!important\s*)?(?:;|$)"
    r"|mso-hide\s*:\s*all"
    r")",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+")


def _hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden"):
        return True
    style = tag.get("style")
    if isinstance(style, list):
        style = ";".join(style)
    return bool(style) and _HIDDEN_STYLE.search(" ".join(str(style).split())) is not None


def visible_html(html: str) -> str:
    """The HTML without what a mail client does not display; hidden text becomes HIDDEN_MARK."""
    soup = BeautifulSoup(html, "html.parser")
    for comment in soup.find_all(string=lambda node: isinstance(node, Comment)):
        comment.extract()
    for tag in soup.find_all(_NEVER_SHOWN):
        tag.decompose()
    # Outermost first: a hidden element's hidden children go with it.
    for tag in soup.find_all(_hidden):
        if tag.decomposed:
            continue
        text = tag.get_text()
        if any(ch.isalnum() for ch in text):
            tag.replace_with(f" {HIDDEN_MARK} ")
        else:
            tag.decompose()
    return str(soup)


@lru_cache(maxsize=4096)
def _dangerous(word: str) -> bool:
    return bool(confusables.is_dangerous(word))


def _confusable_words(text: str) -> list[str]:
    return [word for word in dict.fromkeys(_WORD.findall(text))
            if not word.isascii() and _dangerous(word)]


def read_reply(*, plain: str | None, html: str | None) -> ReplyVerdict:
    """The verdict on a reply's new text: a decision only from what the approver could see."""
    shown = visible_html(html) if html is not None and html.strip() else html
    text = extract_new_text(plain=plain, html=shown)
    if HIDDEN_MARK in text:
        return ReplyVerdict(VerdictKind.AMBIGUOUS, None, "",
                            "the reply holds text its HTML does not display")
    verdict = interpret_reply(text)
    if verdict.kind is VerdictKind.DECISION:
        disguised = _confusable_words(normalize_text(text))
        if disguised:
            return ReplyVerdict(VerdictKind.AMBIGUOUS, None, "",
                                f"mixed-script word {disguised[0]!r}")
    return verdict
