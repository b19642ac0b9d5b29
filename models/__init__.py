"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from domain.reminders import ReminderState
from domain.retry import OutboxState
from models.approvals import (
    ApprovalStep,
    ApprovalToken,
    BudgetRequest,
    Delegation,
    ImapCursor,
    InboundMessage,
    RequestLine,
)
from models.audit import AuditEvent, AuditHead
from models.outbox import Outbox
from models.register import (
    AmountKind,
    Department,
    Grant,
    GrantAmount,
    GrantPublic,
    GrantRecipient,
    GrantStatus,
    Person,
    Recurrence,
)
from models.reminders import Reminder, ReminderKind

__all__ = [
    "AmountKind",
    "ApprovalStep",
    "ApprovalToken",
    "AuditEvent",
    "AuditHead",
    "BudgetRequest",
    "Delegation",
    "Department",
    "Grant",
    "GrantAmount",
    "GrantPublic",
    "GrantRecipient",
    "GrantStatus",
    "ImapCursor",
    "InboundMessage",
    "Outbox",
    "OutboxState",
    "Person",
    "Recurrence",
    "Reminder",
    "ReminderKind",
    "ReminderState",
    "RequestLine",
]
