"""Danish-first formatting of dates and money for mails (Babel); nbsp kept out of plain text."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

LOCALES = {"da": "da_DK", "en": "en_GB"}
MILLION = Decimal(1_000_000)


def _locale(language: str) -> str:
    return LOCALES.get(language, "da_DK")


@lru_cache(maxsize=4096)
def long_date(day: date, language: str) -> str:
    """'31. december 2025' in Danish, '31 December 2025' in English."""
    return format_date(day, "long", locale=_locale(language)).replace("\xa0", " ")


def greeting(name: str, language: str) -> str:
    """'Kære Karen Holm' for a person, 'Til Digitaliseringschefen' for a role (one word).

    The seed's role mailboxes are named in the definite form ("Borgmesteren"), which takes no
    "Kære"; a person's name has a first and a last name.
    """
    role = len(name.split()) == 1
    if language == "en":
        return "Hello" if role else f"Dear {name}"
    return f"Til {name}" if role else f"Kære {name}"


NBSP = "\xa0"
WORD_JOINER = "\u2060"


def unbreakable(text: str) -> str:
    """An amount that never wraps inside itself: no-break spaces, no break after its en dash."""
    return text.replace(" ", NBSP).replace("–", "–" + WORD_JOINER)


# An amount inside free text from the register ("behovet vurderes til 1 mio. kr.").
_AMOUNT_IN_TEXT = re.compile(
    r"\d[\d.,]*(?: ?– ?\d[\d.,]*)? (?:mio\. |mia\. )?kr\."
    r"|DKK \d[\d.,]*(?:–\d[\d.,]*)?(?: million)?")


def unbreakable_amounts(text: str) -> str:
    """Free text with every amount in it made `unbreakable` (the rest may wrap as it likes)."""
    return _AMOUNT_IN_TEXT.sub(lambda found: unbreakable(found.group(0)), text)


def _millions(value: Decimal, language: str) -> str:
    return str(format_decimal(value / MILLION, "#,##0.##", locale=_locale(language)))


@lru_cache(maxsize=4096)  # the same few amounts recur in every mail; Babel is slow
def money(amount: Decimal, amount_max: Decimal | None, language: str) -> str:
    """'1,3–2 mio. kr.', '500.000 kr.'; English 'DKK 1.3–2 million', 'DKK 500,000'."""
    high = amount_max if amount_max is not None and amount_max != amount else None
    if amount >= MILLION or (high is not None and high >= MILLION):
        span = _millions(amount, language)
        if high is not None:
            span += "–" + _millions(high, language)
        return f"{span} mio. kr." if language == "da" else f"DKK {span} million"
    locale = _locale(language)

    def whole(value: Decimal) -> str:
        return str(format_currency(value, "DKK", format="#,##0", currency_digits=False,
                                   locale=locale))

    span = whole(amount) + ("–" + whole(high) if high is not None else "")
    return (f"{span} kr." if language == "da" else f"DKK {span}").replace("\xa0", " ")


@dataclass(frozen=True)
class MoneyLine:
    """One line of a grant's money, as the mail needs it."""

    label: str
    kind: str
    recurrence: str
    amount: Decimal
    amount_max: Decimal | None
    year_from: int | None
    year_to: int | None


def years(line: MoneyLine, language: str) -> str:
    """'2026', '2021–2024', 'fra 2026' / 'from 2026'."""
    if line.year_from and line.year_to:
        if line.year_from == line.year_to:
            return str(line.year_from)
        return f"{line.year_from}–{line.year_to}"
    if line.year_from:
        return f"fra {line.year_from}" if language == "da" else f"from {line.year_from}"
    return ""


def describe_line(line: MoneyLine, language: str) -> str:
    """'1,3–2 mio. kr. årligt' or '0,5 mio. kr. én gang'."""
    suffix = {
        ("da", "yearly"): "årligt", ("da", "once"): "én gang",
        ("en", "yearly"): "a year", ("en", "once"): "once",
    }[(language if language in ("da", "en") else "da", line.recurrence)]
    return f"{money(line.amount, line.amount_max, language)} {suffix}"


def at_stake(lines: Sequence[MoneyLine], language: str, *,
             nobreak: bool = False) -> str | None:
    """What runs out: the needs after the end date, or failing that the appropriated funds.

    `nobreak`: each amount is `unbreakable` (for mail text), the words between them are not.
    """
    needs = [line for line in lines if line.kind == "need"]
    chosen = needs or [line for line in lines if line.kind == "appropriated"]
    if not chosen:
        return None
    parts = [unbreakable(describe_line(line, language)) if nobreak
             else describe_line(line, language) for line in chosen]
    joiner = " og " if language == "da" else " and "
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + joiner + parts[-1]
