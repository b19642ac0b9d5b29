from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.closed_days import working_calendar
from config.settings import Settings
from domain.reminders import (
    DueReminder,
    LedgerRow,
    PlanKind,
    PlannedReminder,
    decide_due,
    plan_reminders,
    replan,
    validate_offsets,
)

CAL = working_calendar(Settings(), around=date(2026, 1, 1), span_years=4)
OFFSETS = (365, 180, 90, 30, 7)


def test_default_offsets_are_moved_back_to_working_days() -> None:
    plan = plan_reminders(date(2025, 12, 31), offsets=OFFSETS, calendar=CAL)
    dues = {(p.kind, p.offset_days): p.due_date for p in plan}
    assert dues[(PlanKind.REMINDER, 365)] == date(2024, 12, 30)  # 31 Dec 2024 is closed
    assert dues[(PlanKind.REMINDER, 180)] == date(2025, 7, 4)  # 4 July 2025, a Friday
    assert dues[(PlanKind.REMINDER, 7)] == date(2025, 12, 23)  # 24 Dec closed → 23 Dec
    assert dues[(PlanKind.EXPIRED, 0)] == date(2026, 1, 2)  # 1 Jan closed → 2 Jan


def test_reminder_over_easter_moves_to_wednesday_before() -> None:
    plan = plan_reminders(date(2026, 4, 13), offsets=(7,), calendar=CAL, with_expiry=False)
    assert plan[0].due_date == date(2026, 4, 1)  # 6 April is 2nd Easter day


def test_offsets_are_validated() -> None:
    assert validate_offsets([7, 30, 7]) == (30, 7)
    with pytest.raises(ValueError, match="between 1 and 3650"):
        validate_offsets([0])
    with pytest.raises(ValueError, match="at least one"):
        validate_offsets([])


def _rows(plan: list[PlannedReminder], *, start_id: int = 1) -> list[LedgerRow]:
    return [LedgerRow(start_id + i, p.kind, p.offset_days, p.end_date, p.due_date, True, False)
            for i, p in enumerate(plan)]


def test_moving_the_end_date_cancels_old_rows_and_plans_new_ones() -> None:
    old = _rows(plan_reminders(date(2025, 12, 31), offsets=OFFSETS, calendar=CAL))
    new_plan = plan_reminders(date(2026, 6, 30), offsets=OFFSETS, calendar=CAL)
    change = replan(old, new_plan)
    assert sorted(change.cancel) == [row.reminder_id for row in old]
    assert len(change.insert) == len(new_plan)


def test_replan_never_touches_sent_rows() -> None:
    plan = plan_reminders(date(2025, 12, 31), offsets=OFFSETS, calendar=CAL)
    rows = _rows(plan)
    sent = LedgerRow(rows[0].reminder_id, rows[0].kind, rows[0].offset_days, rows[0].end_date,
                     rows[0].due_date, is_planned=False, is_cancelled=False)
    change = replan([sent, *rows[1:]], plan_reminders(date(2026, 3, 31), offsets=OFFSETS,
                                                      calendar=CAL))
    assert sent.reminder_id not in change.cancel


def test_same_plan_twice_changes_nothing() -> None:
    plan = plan_reminders(date(2025, 12, 31), offsets=OFFSETS, calendar=CAL)
    change = replan(_rows(plan), plan)
    assert (change.insert, change.reactivate, change.cancel) == ((), (), ())


def test_moving_the_end_date_back_reactivates_cancelled_rows() -> None:
    plan = plan_reminders(date(2025, 12, 31), offsets=(30,), calendar=CAL, with_expiry=False)
    cancelled = [LedgerRow(1, p.kind, p.offset_days, p.end_date, p.due_date, False, True)
                 for p in plan]
    change = replan(cancelled, plan)
    assert [rid for rid, _ in change.reactivate] == [1]


def due(rid: int, grant: int, offset: int, due_day: date, *, end: date = date(2025, 12, 31),
        kind: PlanKind = PlanKind.REMINDER) -> DueReminder:
    return DueReminder(rid, grant, kind, offset, end, due_day)


def test_on_time_reminder_is_not_late() -> None:
    result = decide_due([due(1, 1, 30, date(2025, 12, 1))], as_of=date(2025, 12, 1))
    assert [(s.reminder.reminder_id, s.late) for s in result.send] == [(1, False)]


def test_missed_day_is_caught_up_once_and_marked_late() -> None:
    result = decide_due([due(1, 1, 30, date(2025, 12, 1))], as_of=date(2025, 12, 3))
    assert [(s.reminder.reminder_id, s.late) for s in result.send] == [(1, True)]


def test_several_overdue_reminders_send_only_the_newest() -> None:
    rows = [due(1, 1, 180, date(2025, 7, 4)), due(2, 1, 90, date(2025, 10, 2)),
            due(3, 1, 30, date(2025, 12, 1))]
    result = decide_due(rows, as_of=date(2025, 12, 5))
    assert [s.reminder.reminder_id for s in result.send] == [3]
    assert sorted(old.reminder_id for old, _ in result.superseded) == [1, 2]


def test_ended_grant_gets_one_expiry_notice_not_a_burst() -> None:
    rows = [due(1, 1, 30, date(2025, 12, 1)), due(2, 1, 7, date(2025, 12, 23)),
            due(3, 1, 0, date(2026, 1, 2), kind=PlanKind.EXPIRED)]
    result = decide_due(rows, as_of=date(2026, 2, 1))
    assert [(s.reminder.kind, s.late) for s in result.send] == [(PlanKind.EXPIRED, True)]
    assert len(result.superseded) == 2


def test_expiry_long_ago_is_not_announced() -> None:
    rows = [due(3, 1, 0, date(2020, 1, 2), end=date(2019, 12, 31), kind=PlanKind.EXPIRED)]
    result = decide_due(rows, as_of=date(2026, 2, 1), expiry_notice_days=365)
    assert result.send == ()
    assert [r.reminder_id for r in result.too_old] == [3]


def test_a_row_not_yet_due_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not due"):
        decide_due([due(1, 1, 30, date(2026, 1, 5))], as_of=date(2026, 1, 1))


@given(st.lists(st.tuples(st.integers(1, 5), st.sampled_from(OFFSETS),
                          st.integers(0, 400)), min_size=1, max_size=30, unique_by=lambda t: t[:2]))
def test_exactly_one_send_per_grant_and_every_row_accounted_for(
    specs: list[tuple[int, int, int]],
) -> None:
    as_of = date(2026, 6, 1)
    rows = [due(i, grant, offset, as_of - timedelta(days=back))
            for i, (grant, offset, back) in enumerate(specs)]
    result = decide_due(rows, as_of=as_of)
    sent_grants = [s.reminder.grant_id for s in result.send]
    assert sorted(sent_grants) == sorted({r.grant_id for r in rows})
    handled = {s.reminder.reminder_id for s in result.send} | {
        old.reminder_id for old, _ in result.superseded}
    assert handled == {r.reminder_id for r in rows}
    for old, newer in result.superseded:
        assert (old.due_date, -old.offset_days) <= (newer.due_date, -newer.offset_days)
