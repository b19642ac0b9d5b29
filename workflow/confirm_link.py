"""Confirm links, database side: token → step → request → approver, in a session of their own."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from db.engine import transaction
from domain.errors import Refusal, RefusedError
from models import ApprovalStep, ApprovalToken, BudgetRequest, Person
from workflow.tokens import token_hash

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """The token row, its step and request, and the approver."""

    token: ApprovalToken
    step: ApprovalStep
    request: BudgetRequest
    approver: Person


def find_target(session: Session, token: str) -> Target:
    """Token row → step → request → approver, or RefusedError(INVALID)."""
    row = session.execute(select(ApprovalToken).where(
        col(ApprovalToken.token_hash) == token_hash(token))).scalar_one_or_none()
    step = session.get(ApprovalStep, row.step_id) if row is not None else None
    request = session.get(BudgetRequest, step.request_id) if step is not None else None
    approver = session.get(Person, step.approver_id) if step is not None else None
    if row is None or step is None or request is None or approver is None:
        raise RefusedError(Refusal.INVALID)
    return Target(row, step, request, approver)


def reload_target(session: Session, target: Target) -> Target:
    """The same rows re-read (after a refused decision, to explain with the current facts)."""
    session.expire_all()
    step = session.get(ApprovalStep, target.step.id)
    request = session.get(BudgetRequest, target.request.id)
    token = session.get(ApprovalToken, target.token.id)
    if step is None or request is None or token is None:
        raise RefusedError(Refusal.INVALID)
    return Target(token, step, request, target.approver)


def read_target(engine: Engine, token: str, use: Callable[[Session, Target], T]) -> T:
    """`use(session, target)` in a read-only session; nothing is written."""
    with Session(engine) as session:
        return use(session, find_target(session, token))


def act_on_target(engine: Engine, token: str, use: Callable[[Session, Target], T]) -> T:
    """`use(session, target)` in one transaction: committed if it returns, rolled back if not."""
    with transaction(engine) as session:
        return use(session, find_target(session, token))
