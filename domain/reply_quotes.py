"""Normalisation of reply text and cutting of quoted text from plain-text replies.

Pure: stdlib only, no I/O. The cutters are ordered by nothing but position — the text is cut at the
first line where any of them fires, so everything below it (the quoted request with its two
keywords) never reaches the interpreter.
"""

import re
import unicodedata

__all__ = ["QUOTE_SENTINEL", "normalize_text", "strip_quoted_text"]

QUOTE_SENTINEL = "--- Skriv dit svar over denne linje / Write your reply above this line ---"

# Matched case-insensitively and without the dashes, so a client that re-wraps or re-dashes the
# sentinel line (or puts "> " in front of it) still cuts there.
_SENTINEL_PHRASES = ("skriv dit svar over denne linje", "write your reply above this line")

# Everything str.splitlines() treats as a line break, so that no later splitting disagrees with us.
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

_OTHER_BREAK = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")

_QUOTE_LINE = re.compile(r"^[ \t]*>")
_SIGNATURE = re.compile(r"^--[ \t]*$")
_SEPARATOR = re.compile(r"^[ \t]*_{10,}[ \t]*$")
_ORIGINAL_MESSAGE = re.compile(
    r"^[ \t]*-{2,}[ \t]*(?:original message|oprindelig meddelelse|forwarded message"
    r"|videresendt meddelelse|videresendt besked)[ \t]*-{2,}",
    re.IGNORECASE,
)
_FORWARD_INTRO = re.compile(
    r"^[ \t]*(?:begin forwarded message|start på videresendt (?:besked|meddelelse))[ \t]*:",
    re.IGNORECASE,
)
_MOBILE_FOOTER = re.compile(
    r"^[ \t]*(?:sendt fra min|sent from my|hent outlook til|get outlook for)\b", re.IGNORECASE
)
# Outlook writes "Fra:"/"From:" (bold in HTML, so "*Fra:*" once converted) followed within a few
# lines by "Sendt:"/"Sent:" (Windows) or "Dato:"/"Date:" (Mac); requiring both avoids cutting a
# reply that merely begins with the word "Fra:".
_HEADER_FROM = re.compile(r"^[ \t]*\*?(?:fra|from)[ \t]*:", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^[ \t]*\*?(?:sendt|sent|dato|date)[ \t]*:", re.IGNORECASE)
_HEADER_WINDOW = 5
# Attribution lines: Gmail, Apple Mail, Thunderbird, in Danish and English. Gmail wraps long ones
# over two lines ("… skrev Navn <" / "addr>:"), so a window of up to three lines is joined.
_ATTRIBUTION_START = re.compile(r"^[ \t]*(?:den|on)\s", re.IGNORECASE)
_ATTRIBUTION_VERB = re.compile(r"\b(?:skrev|wrote)\b", re.IGNORECASE)
_ATTRIBUTION = re.compile(r"\b(?:skrev|wrote)\b[^\n]{0,200}:[ \t]*$", re.IGNORECASE)
_ATTRIBUTION_WINDOW = 3
_ATTRIBUTION_MAX_CHARS = 400
_DIGIT = re.compile(r"\d")


def normalize_text(text: str) -> str:
    """Return NFKC text without invisible format characters, with every line break as ``\\n``."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        # No ASCII character is a format character: look only at the distinct non-ASCII ones.
        invisible = {
            ord(ch)
            for ch in set(_NON_ASCII.findall(text))
            if unicodedata.category(ch) == "Cf"
        }
        if invisible:
            text = text.translate(dict.fromkeys(invisible))
    # One left-to-right pass ("\r\r\n" is two breaks), and only when there is a break to map.
    if _OTHER_BREAK.search(text):
        text = _LINE_BREAKS.sub("\n", text)
    # NFKC already maps U+00A0 to a space; U+202F and friends too. Kept explicit for clarity.
    return text.replace("\u00a0", " ")


def _is_sentinel(line: str) -> bool:
    folded = line.casefold()
    return any(phrase in folded for phrase in _SENTINEL_PHRASES)


def _is_outlook_header(lines: list[str], index: int) -> bool:
    if not _HEADER_FROM.match(lines[index]):
        return False
    window = lines[index + 1 : index + 1 + _HEADER_WINDOW]
    return any(_HEADER_SENT.match(line) for line in window)


def _is_attribution(lines: list[str], index: int) -> bool:
    first = lines[index]
    # Gmail without "Den" ("man. 3. nov. 2025 kl. 10.12 skrev …") has the verb on its first line.
    verb_first = _ATTRIBUTION_VERB.search(first) is not None and _DIGIT.search(first) is not None
    if not (_ATTRIBUTION_START.match(first) or verb_first):
        return False
    joined = first.strip()
    for offset in range(_ATTRIBUTION_WINDOW):
        if offset:
            position = index + offset
            # A following line that is itself an attribution start belongs to its own window.
            if position >= len(lines) or _ATTRIBUTION_START.match(lines[position]):
                return False
            joined = f"{joined} {lines[position].strip()}"
        if len(joined) > _ATTRIBUTION_MAX_CHARS:
            return False
        if _ATTRIBUTION.search(joined) and _DIGIT.search(joined):
            return True
        if joined.endswith(":"):
            return False
    return False


_SIMPLE_CUTS = (
    _QUOTE_LINE,
    _SIGNATURE,
    _SEPARATOR,
    _ORIGINAL_MESSAGE,
    _FORWARD_INTRO,
    _MOBILE_FOOTER,
)


def _is_cut(lines: list[str], index: int) -> bool:
    line = lines[index]
    if any(pattern.match(line) for pattern in _SIMPLE_CUTS) or _is_sentinel(line):
        return True
    return _is_outlook_header(lines, index) or _is_attribution(lines, index)


def strip_quoted_text(text: str) -> str:
    """Return only the new text of a plain-text reply, cut at the first quote marker found."""
    lines = normalize_text(text).split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _is_cut(lines, index):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()
