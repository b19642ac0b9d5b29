"""What changed between two versions of a request, as the approver reads it (pure, no I/O)."""

from copy import deepcopy
from typing import Any

from domain.request_changes import describe_changes


def line(year: int, amount: str, amount_max: str | None = None, *, recurring: bool = True,
         label: str = "Drift") -> dict[str, Any]:
    return {"year": year, "label": label, "amount": amount, "amount_max": amount_max,
            "recurring": recurring}


BASE: dict[str, Any] = {
    "title": "Domen – drift", "justification": "Midlerne udløber.", "amounts_note": "",
    "lines": [line(2026, "1300000", "2000000"), line(2027, "1300000", "2000000")],
}


def changed(**updates: Any) -> dict[str, Any]:
    current = deepcopy(BASE)
    current.update(updates)
    return current


def test_first_version_has_no_changes() -> None:
    assert describe_changes(None, BASE, language="da") == []
    assert describe_changes({}, BASE, language="da") == []


def test_identical_versions_have_no_changes() -> None:
    assert describe_changes(BASE, deepcopy(BASE), language="da") == []


def test_changed_range_in_danish_and_english() -> None:
    current = changed(lines=[line(2026, "1500000", "2000000"), line(2027, "1300000", "2000000")])
    assert describe_changes(BASE, current, language="da") == [
        "Ændret beløb 2026 Drift: 1.300.000–2.000.000 → 1.500.000–2.000.000 kr. (løbende)"]
    assert describe_changes(BASE, current, language="en") == [
        "Changed amount 2026 Drift: 1,300,000–2,000,000 → 1,500,000–2,000,000 kr. (recurring)"]


def test_range_collapsing_to_one_amount() -> None:
    current = changed(lines=[line(2026, "1300000", "1300000"), line(2027, "1300000", "2000000")])
    assert describe_changes(BASE, current, language="da") == [
        "Ændret beløb 2026 Drift: 1.300.000–2.000.000 → 1.300.000 kr. (løbende)"]


def test_only_the_recurring_flag_changed() -> None:
    current = changed(lines=[line(2026, "1300000", "2000000", recurring=False),
                             line(2027, "1300000", "2000000")])
    assert describe_changes(BASE, current, language="da") == [
        "Ændret beløb 2026 Drift: 1.300.000–2.000.000 → 1.300.000–2.000.000 kr. (engang)"]


def test_added_and_removed_lines_in_year_order() -> None:
    current = changed(lines=[line(2027, "1300000", "2000000"), line(2028, "900000")])
    assert describe_changes(BASE, current, language="da") == [
        "Fjernet linje 2026 Drift: 1.300.000–2.000.000 kr.",
        "Ny linje 2028 Drift: 900.000 kr."]


def test_relabelled_line_is_a_removal_and_an_addition() -> None:
    current = changed(lines=[line(2026, "1300000", "2000000", label="Drift og vedligehold"),
                             line(2027, "1300000", "2000000")])
    assert describe_changes(BASE, current, language="da") == [
        "Fjernet linje 2026 Drift: 1.300.000–2.000.000 kr.",
        "Ny linje 2026 Drift og vedligehold: 1.300.000–2.000.000 kr."]


def test_line_without_label() -> None:
    previous = changed(lines=[line(2026, "500000", label="")])
    current = changed(lines=[line(2026, "600000", label="")])
    assert describe_changes(previous, current, language="da") == [
        "Ændret beløb 2026: 500.000 → 600.000 kr. (løbende)"]


def test_texts_come_first_and_say_only_that_they_changed() -> None:
    current = changed(title="Domen – drift og vedligehold", justification="Ny begrundelse.",
                      amounts_note="Spænd bevaret.")
    assert describe_changes(BASE, current, language="da") == [
        "Titel: ændret", "Begrundelse: ændret", "Note om beløb: ændret"]
    assert describe_changes(BASE, current, language="en") == [
        "Title: changed", "Justification: changed", "Amount note: changed"]


def test_missing_text_field_counts_as_empty() -> None:
    previous = {k: v for k, v in BASE.items() if k != "amounts_note"}
    assert describe_changes(previous, BASE, language="da") == []


def test_unknown_language_falls_back_to_danish() -> None:
    assert describe_changes(BASE, changed(title="X"), language="de") == ["Titel: ændret"]


def test_a_change_in_oere_is_described() -> None:
    previous = changed(lines=[line(2026, "1300000.00")])
    current = changed(lines=[line(2026, "1300000.50")])
    assert describe_changes(previous, current, language="da") != []  # 1.300.000,50 kr.
