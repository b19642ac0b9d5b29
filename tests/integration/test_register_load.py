"""`bevilling load`: validation with file:line, all-or-nothing, idempotent, replanning."""

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from loading.register_file import read_register
from loading.yaml_lines import DataFileError
from models import AuditEvent, Grant, GrantAmount, Person, Reminder, ReminderState
from tests.support.factories import SEED, load_file, make_grant, write_register


def count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_seed_file_loads_every_appropriation_of_the_letter(engine: Engine) -> None:
    report = load_file(engine, SEED)
    assert report.grants_created == 5
    with Session(engine) as session:
        grants = {g.key: g for g in session.execute(select(Grant)).scalars()}
        assert grants["DOMEN"].end_date == date(2025, 12, 31)
        assert grants["STS-BASIS"].end_date == date(2026, 12, 31)
        assert grants["STS-ETABLERING"].end_date == date(2025, 6, 30)
        assert "medio 2025" in grants["STS-ETABLERING"].notes
        domen = session.execute(select(GrantAmount).where(
            col(GrantAmount.grant_id) == grants["DOMEN"].id)
            .order_by(col(GrantAmount.position))).scalars().all()
        assert [(a.amount, a.amount_max, a.recurrence.value) for a in domen] == [
            (1_300_000, 2_000_000, "yearly"), (500_000, None, "once")]
        emails = list(session.execute(select(col(Person.email))).scalars())
        assert all(email.endswith("@kommune.example.org") for email in emails)


def test_loading_the_same_file_twice_changes_nothing(engine: Engine) -> None:
    load_file(engine, SEED)
    before = (count(engine, Reminder), count(engine, AuditEvent))
    report = load_file(engine, SEED)
    assert (report.grants_created, report.grants_updated, report.grants_unchanged) == (0, 0, 5)
    assert (count(engine, Reminder), count(engine, AuditEvent)) == before


def test_changed_end_date_replans_and_cancels_obsolete(engine: Engine, tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[make_grant(end=date(2026, 12, 31))])
    load_file(engine, path)
    write_register(path, grants=[make_grant(end=date(2027, 6, 30))])
    report = load_file(engine, path)
    assert report.grants_updated == 1
    with Session(engine) as session:
        rows = session.execute(select(Reminder)).scalars().all()
    planned = {r.end_date for r in rows if r.state == ReminderState.PLANNED}
    cancelled = {r.end_date for r in rows if r.state == ReminderState.CANCELLED}
    assert planned == {date(2027, 6, 30)}
    assert cancelled == {date(2026, 12, 31)}
    assert len([r for r in rows if r.state == ReminderState.PLANNED]) == 6


def test_lapsed_grant_has_no_pending_reminders(engine: Engine, tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[make_grant()])
    load_file(engine, path)
    write_register(path, grants=[make_grant(status="lapsed")])
    load_file(engine, path)
    with Session(engine) as session:
        states = set(session.execute(select(col(Reminder.state))).scalars())
    assert states == {ReminderState.CANCELLED}


def test_invalid_file_writes_nothing_and_names_line_and_field(
    engine: Engine, tmp_path: Path,
) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[
        make_grant("OK1"), make_grant("BAD", end_date="2025-13-45"),
        make_grant("BAD2", reminder_offsets=[0])])
    with pytest.raises(DataFileError) as caught:
        load_file(engine, path)
    text = str(caught.value)
    lines = path.read_text().splitlines()
    bad_line = next(i for i, line in enumerate(lines, 1) if "2025-13-45" in line)
    assert f"r.yaml:{bad_line}: grants.1.end_date:" in text
    assert "grants.2.reminder_offsets" in text
    assert count(engine, Grant) == 0
    assert count(engine, Person) == 0


def test_unknown_owner_is_refused_with_its_line(engine: Engine, tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.yaml",
                          grants=[make_grant(owner="nobody@kommune.example.org")])
    with pytest.raises(DataFileError, match=r"r\.yaml:\d+: grants\[G1\]: unknown person"):
        load_file(engine, path)
    assert count(engine, Grant) == 0


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("grants:\n  - key: A\n    title: [unclosed\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"broken\.yaml:\d+: YAML syntax"):
        read_register(path)


def test_unknown_section_and_duplicate_keys_are_reported(tmp_path: Path) -> None:
    path = write_register(tmp_path / "r.yaml", grants=[make_grant("A"), make_grant("A")])
    path.write_text(path.read_text() + "budget: 1\n", encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        read_register(path)
    messages = [p.message for p in caught.value.problems]
    assert any("unknown section" in m for m in messages)
    assert any("duplicate 'A'" in m for m in messages)


def test_csv_loads_and_errors_name_the_row(engine: Engine, tmp_path: Path) -> None:
    load_file(engine, SEED)
    good = tmp_path / "grants.csv"
    good.write_text(
        "key,title,department,owner,end_date,amount,amount_kind,amount_recurrence,notes\n"
        "CSV-1,Pilot,borgmesterens-afdeling,karen.holm@kommune.example.org,2027-03-31,"
        "250000,need,yearly,fra CSV\n", encoding="utf-8")
    report = load_file(engine, good)
    assert report.grants_created == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("key,title,department,owner,end_date\n"
                   "A,ok,borgmesterens-afdeling,karen.holm@kommune.example.org,2027-01-01\n"
                   "B,bad,borgmesterens-afdeling,karen.holm@kommune.example.org,31-12-2027\n",
                   encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bad\.csv:3: end_date"):
        read_register(bad)


def test_csv_with_unknown_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("key,title,department,owner,end_date,colour\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="unknown columns: colour"):
        read_register(path)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(DataFileError, match="unsupported file type"):
        read_register(path)
