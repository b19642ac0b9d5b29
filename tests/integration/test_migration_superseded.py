"""Migration 0006 (superseded steps): a database with a revised request (old approvals reading
`approved`) upgrades to every step of the replaced version reading `superseded`."""

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, insert, select, update
from sqlmodel import Session, col

from db.migrate import alembic_config
from models import ApprovalStep, BudgetRequest
from tests.support.approvals import SUBMITTED, load_seed, make_settings, submit_request


def test_old_version_steps_become_superseded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    engine = create_engine(url)
    load_seed(engine)
    submit_request(engine, "DOMEN-DRIFT", settings=make_settings(url))
    with Session(engine) as session:
        request = session.execute(select(BudgetRequest).where(
            col(BudgetRequest.key) == "DOMEN-DRIFT")).scalar_one()
        request_id = request.id
        first = session.execute(select(ApprovalStep).where(
            col(ApprovalStep.request_id) == request.id).order_by(col(ApprovalStep.id))).scalars()
        row = next(iter(first))
        # what the code before issue 10 left behind: an old version whose approval still reads
        # approved, and the new version's step
        session.execute(update(ApprovalStep).where(col(ApprovalStep.id) == row.id)
                        .values(state="approved"))
        session.execute(insert(ApprovalStep).values(
            {**{c: getattr(row, c) for c in ("request_id", "stage_key", "stage_title_da",
                                            "stage_title_en", "stage_order", "stage_mode",
                                            "approver_id", "answer_days")},
             "version": "v2", "state": "pending", "created_at": SUBMITTED}))
        session.execute(update(BudgetRequest).where(col(BudgetRequest.id) == request.id)
                        .values(version="v2"))
        session.commit()
    command.downgrade(config, "0004")
    command.upgrade(config, "head")
    with Session(engine) as session:
        states = {(s.version, s.state) for s in session.execute(select(ApprovalStep)).scalars()
                  if s.request_id == request_id}
    assert ("v2", "pending") in states
    assert {state for version, state in states if version != "v2"} == {"superseded"}
    engine.dispose()
