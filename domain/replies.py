"""Interpretation of an approver's e-mail reply: a decision, or a refusal to guess.

Pure: stdlib only, no I/O, no clock. Only a plain yes is a yes:

- only the first non-empty line of the *new* text decides; it must be the keyword alone, with at
  most punctuation and a comment free of any word of doubt (negation, hesitation, condition,
  question: ikke, ej, nej, endnu, vent, men, først, hvis, måske, not, no, yet, wait, but, unless,
  if, maybe, "?" …, `DOUBT_WORDS`) and written in one script (Latin: a Cyrillic "і" in "іkke"
  hides a word of doubt from any lexicon);
- the lines after the first are the comment: an ordinary sentence there ("Ikke prioriteret i år.")
  does not matter, but the other keyword, a negated keyword ("jeg kan ikke godkende") or a
  retraction ("ikke alligevel", "nej vent", "fortryd", "not after all") keeps the reply ambiguous.

The outgoing request contains both keywords ("Skriv GODKEND eller AFVIS …"), so a quote that slips
past the cutters can only ever make a reply ambiguous, never decide it.
"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from domain.reply_html import html_to_text
from domain.reply_quotes import QUOTE_SENTINEL, normalize_text, strip_quoted_text

__all__ = [
    "DOUBT_WORDS",
    "QUOTE_SENTINEL",
    "RETRACTIONS",
    "Decision",
    "ReplyVerdict",
    "VerdictKind",
    "extract_new_text",
    "html_to_text",
    "interpret_reply",
    "normalize_text",
    "strip_quoted_text",
]


class Decision(StrEnum):
    """What the approver decided."""

    APPROVE = "approve"
    REJECT = "reject"


class VerdictKind(StrEnum):
    """Whether a reply decided, was ambiguous, or said nothing new."""

    DECISION = "decision"
    AMBIGUOUS = "ambiguous"
    EMPTY = "empty"


@dataclass(frozen=True)
class ReplyVerdict:
    """The outcome of reading one reply; ``comment`` is only set for decisions."""

    kind: VerdictKind
    decision: Decision | None
    comment: str
    reason: str


_KEYWORDS: dict[str, Decision] = {
    "godkendt": Decision.APPROVE,
    "godkend": Decision.APPROVE,
    "approved": Decision.APPROVE,
    "approve": Decision.APPROVE,
    "afvist": Decision.REJECT,
    "afvis": Decision.REJECT,
    "rejected": Decision.REJECT,
    "reject": Decision.REJECT,
}
# Stems, searched as plain substrings of the folded text: "godkendelse", "afvise", "disapprove"
# all count. Over-matching only costs a clarifying mail; under-matching could cost a wrong decision.
_STEMS: dict[Decision, tuple[str, ...]] = {
    Decision.APPROVE: ("godkend", "approv"),
    Decision.REJECT: ("afvis", "reject"),
}
# Longest alternatives first so "godkendt" is not read as "godkend" + "t". ASCII-only matching:
# a Unicode case-insensitive "k" would also match the Kelvin sign.
_FIRST_LINE = re.compile(
    r"(?P<keyword>" + "|".join(sorted(_KEYWORDS, key=len, reverse=True)) + r")"
    r"(?P<rest>(?=[ \t.,;:!?\-\u2013\u2014]|$).*)",
    re.IGNORECASE | re.ASCII,
)
_SEPARATORS = " \t.,;:!-\u2013\u2014"
_STEM = r"(?:godkend|afvis|approv|reject)\w*"
# Negations that sit next to a keyword, on one line (a comment sentence on the next line that
# starts with "Ikke" is not a negation of the keyword above it).
_GAP = r"[^\S\n]+"
_NEGATIONS = (
    # "jeg kan ikke godkende", "ikke at afvise", "do not approve", "can't really approve"
    re.compile(
        r"\b(?:ikke|ej|aldrig|nej|not|never|cannot|can[’']?t|don[’']?t|won[’']?t|"
        r"wouldn[’']?t|shouldn[’']?t)\b(?:[^\w\n]+\w+){0,3}?[^\w\n]+" + _STEM
    ),
    # Danish verb-second order: "jeg godkender ikke"
    re.compile(_STEM + _GAP + r"(?:ikke|ej)\b"),
    re.compile(r"\bnej" + _GAP + r"tak\b"),
    re.compile(r"\bno,?" + _GAP + r"thank"),
)
# Words of doubt: on the keyword's line any one of them makes the reply ambiguous. Compared with
# the skeleton (case-folded, accents dropped: "måske" is "maske"), as whole words.
DOUBT_WORDS: tuple[str, ...] = (
    # Danish: negation, hesitation, condition, time
    "ikke", "ik", "ej", "nej", "aldrig", "endnu", "vent", "venter", "vente", "afvent", "afventer",
    "men", "dog", "først", "hvis", "medmindre", "forudsat", "betinget", "betingelse", "måske",
    "muligvis", "tvivl", "usikker", "senere", "fortryd", "fortryder", "alligevel", "undtagen",
    "kun", "næsten",
    # English
    "not", "no", "nope", "never", "yet", "wait", "on hold", "but", "unless", "if", "provided",
    "pending", "maybe", "perhaps", "possibly", "later", "except", "only", "almost", "undo",
    "cancel", "don't", "dont", "can't", "cant", "won't", "isn't", "doesn't", "cannot",
)
# Phrases on later lines that take back what the first line said.
RETRACTIONS: tuple[str, ...] = (
    "ikke alligevel", "nej vent", "nej, vent", "vent nej", "vent, nej", "fortryd", "fortryder",
    "glem det", "glem mit svar", "annuller", "tilbagekald", "trækker mit svar",
    "not after all", "wait no", "wait, no", "no wait", "no, wait", "scratch that",
    "on second thought", "disregard", "ignore my", "take it back", "undo", "cancel that",
)


def _skeleton_phrase(phrase: str) -> str:
    return _skeleton(phrase).replace("’", "'")


def _words(phrases: tuple[str, ...]) -> re.Pattern[str]:
    # Whole words: not glued to a letter on either side (a digit or "_" next to it still counts).
    alternatives = sorted({re.escape(_skeleton_phrase(p)).replace(r"\ ", r"\s+")
                           for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<![^\W\d_])(?:" + "|".join(alternatives) + r")(?![^\W\d_])")


def _skeleton(text: str) -> str:
    """Return folded text without combining marks, so no accent can hide a keyword."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    if not decomposed.isascii():
        # No ASCII character is a mark: look only at the distinct non-ASCII ones.
        marks = {ord(ch) for ch in set(decomposed) if unicodedata.category(ch).startswith("M")}
        if marks:
            decomposed = decomposed.translate(dict.fromkeys(marks))
    return decomposed.casefold()


_DOUBT = _words(DOUBT_WORDS)
_RETRACTION = _words(RETRACTIONS)


def _foreign_letters(line: str) -> str:
    """The letters of `line` that are not Latin (a Cyrillic "і", a Greek "ο"): a disguise."""
    return "".join(sorted({ch for ch in line if ch.isalpha() and not ch.isascii()
                           and not unicodedata.name(ch, "").startswith("LATIN")}))


def _ambiguous(reason: str) -> ReplyVerdict:
    return ReplyVerdict(kind=VerdictKind.AMBIGUOUS, decision=None, comment="", reason=reason)


def _sides_present(skeleton: str) -> set[Decision]:
    return {side for side, stems in _STEMS.items() if any(stem in skeleton for stem in stems)}


def _negation(skeleton: str) -> str | None:
    for pattern in _NEGATIONS:
        found = pattern.search(skeleton)
        if found:
            return " ".join(found.group(0).split())
    return None


def interpret_reply(new_text: str) -> ReplyVerdict:
    """Read the new text of a reply and return a decision only when it is unmistakable."""
    text = normalize_text(new_text)
    lines = [line.strip() for line in text.split("\n")]
    non_empty = [index for index, line in enumerate(lines) if line]
    if not non_empty:
        return ReplyVerdict(
            kind=VerdictKind.EMPTY, decision=None, comment="", reason="no new text in the reply"
        )
    skeleton = _skeleton(text)
    if len(_sides_present(skeleton)) > 1:
        return _ambiguous("both keywords present")
    negation = _negation(skeleton)
    if negation is not None:
        return _ambiguous(f"negation '{negation}'")
    first = non_empty[0]
    matched = _FIRST_LINE.match(lines[first])
    if matched is None:
        return _ambiguous("first line is not a decision keyword")
    rest = matched.group("rest").lstrip(_SEPARATORS)
    if "?" in rest:
        return _ambiguous("decision keyword followed by a question mark")
    foreign = _foreign_letters(lines[first])
    if foreign:
        return _ambiguous(f"first line mixes scripts ({foreign!r})")
    doubt = _DOUBT.search(_skeleton_phrase(rest))
    if doubt is not None:
        return _ambiguous(f"doubt '{doubt.group(0)}' on the keyword's line")
    later = "\n".join(lines[first + 1 :])
    retraction = _RETRACTION.search(_skeleton_phrase(later)) if later.strip() else None
    if retraction is not None:
        return _ambiguous(f"retraction '{' '.join(retraction.group(0).split())}'")
    keyword = matched.group("keyword")
    comment_lines = [rest, *(line.rstrip() for line in text.split("\n")[first + 1 :])]
    return ReplyVerdict(
        kind=VerdictKind.DECISION,
        decision=_KEYWORDS[keyword.lower()],
        comment="\n".join(comment_lines).strip(),
        reason=f"first line starts with '{keyword.upper()}'",
    )


def extract_new_text(*, plain: str | None, html: str | None) -> str:
    """Return the new text of a reply: the plain part if it has any text, else the HTML part."""
    if plain is not None and plain.strip():
        return strip_quoted_text(plain)
    if html is not None and html.strip():
        return strip_quoted_text(html_to_text(html))
    return ""
