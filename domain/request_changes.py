"""What changed between two versions of a budget request, in words an approver reads."""

from decimal import Decimal
from typing import Any

LABELS = {
    "da": {
        "title": "Titel",
        "justification": "Begrundelse",
        "amounts_note": "Note om beløb",
        "added": "Ny linje",
        "removed": "Fjernet linje",
        "changed": "Ændret beløb",
        "text": "ændret",
        "recurring": "løbende",
        "once": "engang",
    },
    "en": {
        "title": "Title",
        "justification": "Justification",
        "amounts_note": "Amount note",
        "added": "New line",
        "removed": "Removed line",
        "changed": "Changed amount",
        "text": "changed",
        "recurring": "recurring",
        "once": "one-off",
    },
}


def _line_key(line: dict[str, Any]) -> tuple[int, str]:
    return (int(line["year"]), str(line.get("label", "")))


def _kroner(value: Any, language: str) -> str:
    amount = Decimal(str(value))
    # Øre are shown only when there are any, so a change of 0,50 kr. is never invisible.
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    if language == "da":
        return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def _amount(line: dict[str, Any], language: str) -> str:
    low, high = line["amount"], line.get("amount_max")
    text = _kroner(low, language)
    if high is not None and Decimal(str(high)) != Decimal(str(low)):
        text += "–" + _kroner(high, language)
    return text


def describe_changes(
    previous: dict[str, Any] | None, current: dict[str, Any], *, language: str
) -> list[str]:
    """One sentence per changed text or amount line; empty when there is no previous version."""
    if not previous:
        return []
    words = LABELS.get(language, LABELS["da"])
    changes = [
        f"{words[field]}: {words['text']}"
        for field in ("title", "justification", "amounts_note")
        if previous.get(field, "") != current.get(field, "")
    ]
    before = {_line_key(line): line for line in previous.get("lines", [])}
    after = {_line_key(line): line for line in current.get("lines", [])}
    for key in sorted(set(before) | set(after)):
        year, label = key
        name = f"{year}{' ' + label if label else ''}"
        old, new = before.get(key), after.get(key)
        if old is None and new is not None:
            changes.append(f"{words['added']} {name}: {_amount(new, language)} kr.")
        elif new is None and old is not None:
            changes.append(f"{words['removed']} {name}: {_amount(old, language)} kr.")
        elif (
            old is not None
            and new is not None
            and (
                _amount(old, language) != _amount(new, language)
                or old["recurring"] != new["recurring"]
            )
        ):
            kind = words["recurring"] if new["recurring"] else words["once"]
            changes.append(
                f"{words['changed']} {name}: {_amount(old, language)} → "
                f"{_amount(new, language)} kr. ({kind})"
            )
    return changes
