"""Conversion of HTML replies to text, with the mail clients' quote blocks removed first.

Pure: stdlib ``html.parser`` only. The parser streams (no tree, no recursion), so deeply nested or
unclosed hostile HTML costs linear time and cannot overflow the stack.
"""

import re
from html.parser import HTMLParser

from domain.reply_quotes import normalize_text

__all__ = ["html_to_text"]

_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_INVISIBLE = frozenset({"head", "script", "style", "template", "title", "xml"})
# Subtrees that are quotes or signatures and nothing else.
_DROP_CLASSES = frozenset(
    [
        "gmail_quote",
        "gmail_quote_container",
        "gmail_attr",
        "gmail_signature",
        "moz-cite-prefix",
        "moz-signature",
        "yahoo_quoted",
    ]
)
# Outlook web / new Outlook: the reply header and the whole quoted mail follow these, as siblings.
_CUT_IDS = frozenset({"divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"})
_OUTLOOK_HEADER_START = re.compile(r"^\W*(?:fra|from)\s*:", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\n\r\f\v]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _Stopped(Exception):
    """Raised out of the parser once nothing after this point can reach the text."""


class _ReplyTextParser(HTMLParser):
    """Streams HTML into text chunks, skipping quote subtrees and stopping at reply headers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._stack: list[str] = []
        self._open: dict[str, int] = {}
        self._skip_below: int | None = None
        self._stopped = False
        self._invisible = 0
        self._pre = 0
        # Outlook desktop: a border-top div whose text starts with "Fra:"/"From:" is the quote
        # header; remember where it began and decide once its text is known.
        self._border_div_depth: int | None = None
        self._border_chunk = 0
        self._cut_at: int | None = None
        # Adjacent block boundaries ("</p><p>") make one line break; only <br> makes blank lines.
        self._at_line_start = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._stopped:
            return
        if tag == "body" and self._open.get("head"):
            # An unclosed <head> must not hide the whole body.
            self.handle_endtag("head")
        attributes = {name.lower(): (value or "") for name, value in attrs}
        if tag not in _VOID:
            self._push(tag)
        if self._skip_below is not None:
            return
        if attributes.get("id", "").lower() in _CUT_IDS:
            self._stop()
            return
        classes = set(attributes.get("class", "").lower().split())
        is_cite = tag == "blockquote" and attributes.get("type", "").lower() == "cite"
        if (classes & _DROP_CLASSES or is_cite) and tag not in _VOID:
            self._skip_below = len(self._stack) - 1
            return
        if tag in _INVISIBLE and tag not in _VOID:
            self._invisible += 1
        if tag == "pre":
            self._pre += 1
        if (
            tag == "div"
            and self._border_div_depth is None
            and "border-top" in attributes.get("style", "").lower()
        ):
            self._border_div_depth = len(self._stack) - 1
            self._border_chunk = len(self.chunks)
        self._break(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._stopped or self._skip_below is not None:
            return
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._stopped or not self._open.get(tag):
            return
        while self._stack:
            closed = self._pop()
            self._after_close(closed)
            if closed == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._stopped or self._skip_below is not None or self._invisible:
            return
        text = data if self._pre else _SPACES.sub(" ", data)
        self.chunks.append(text)
        if text.strip():
            self._at_line_start = False

    def _break(self, tag: str) -> None:
        if tag == "br" or (tag in _BLOCK and not self._at_line_start):
            self.chunks.append("\n")
            self._at_line_start = True

    def _push(self, tag: str) -> None:
        self._stack.append(tag)
        self._open[tag] = self._open.get(tag, 0) + 1

    def _pop(self) -> str:
        tag = self._stack.pop()
        self._open[tag] -= 1
        return tag

    def _after_close(self, tag: str) -> None:
        depth = len(self._stack)
        if self._skip_below is not None:
            if depth <= self._skip_below:
                self._skip_below = None
            return
        if tag in _INVISIBLE and self._invisible:
            self._invisible -= 1
        if tag == "pre" and self._pre:
            self._pre -= 1
        self._break(tag)
        if self._border_div_depth is not None and depth <= self._border_div_depth:
            header = "".join(self.chunks[self._border_chunk :]).strip()
            if _OUTLOOK_HEADER_START.match(normalize_text(header)):
                self._cut_at = self._border_chunk
                self._stop()
            self._border_div_depth = None

    def _stop(self) -> None:
        # Every handler ignores what follows a stop (and an Outlook header cut keeps only the
        # chunks before it), so the rest of the document — the quoted mail — is not parsed.
        self._stopped = True
        raise _Stopped

    def text(self) -> str:
        """Return the collected text, truncated at an Outlook quote header if one was found."""
        chunks = self.chunks if self._cut_at is None else self.chunks[: self._cut_at]
        return "".join(chunks)


def html_to_text(html: str) -> str:
    """Return the visible text of an HTML reply without the quote blocks of known mail clients."""
    parser = _ReplyTextParser()
    try:
        parser.feed(html)
        parser.close()
    except _Stopped:
        pass
    lines = (line.strip() for line in normalize_text(parser.text()).split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
