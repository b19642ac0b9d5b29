"""Every error bevilling raises on purpose, under one root.

    BevillingError
    ├── ConfigurationError    settings, secrets or servers missing or wrong (fix the setup)
    ├── InputError            a data file, a form, a command's argument or a message is not valid
    ├── NotFoundError         a request, step or token named by the caller does not exist
    ├── RefusedError          the action is understood but not allowed now; `.reason` says why
    └── DeliveryError         mail could not be handed over (transient or permanent, see mail/)

Faces (CLI, page, flows) catch `BevillingError`, never a message text: the CLI prints one line
and a hint with the class's exit code; the page picks its Danish text by `RefusedError.reason`.
"""

from enum import StrEnum


class BevillingError(Exception):
    """The root: anything bevilling raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code = 1
    hint = ""


class ConfigurationError(BevillingError):
    """Settings, a secret, a server or the database schema is missing or wrong."""

    exit_code = 3
    hint = "see docs/operations.md for settings and secrets"


class InputError(BevillingError):
    """A data file, a form field, a command argument or an inbound message is not valid."""

    exit_code = 2


class NotFoundError(BevillingError, LookupError):
    """The request, step or token the caller named does not exist."""

    exit_code = 4


class Refusal(StrEnum):
    """Why a step may not be answered (by reply, by link, by any future door) right now."""

    INVALID = "invalid"  # the token belongs to no step we know, or to another step
    OUTDATED = "outdated"  # the request was changed: this step or token is of an old version
    DECIDED = "decided"  # the step was approved or rejected already
    SKIPPED = "skipped"  # the stage completed without this step
    CLOSED = "closed"  # the request is no longer pending (approved, rejected, withdrawn)
    INACTIVE = "inactive"  # the step's stage has not started yet
    USED = "used"  # this token has decided once already
    EXPIRED = "expired"  # the token's validity ran out
    REQUESTER = "requester"  # separation of duties: nobody decides their own request
    NOT_APPROVER = "not-approver"  # neither the approver nor their direct substitute that day


class RefusedError(BevillingError):
    """An action that is understood but not allowed now; `reason` picks the explanation."""

    exit_code = 5

    def __init__(self, reason: Refusal, detail: str = "", *, request_key: str | None = None,
                 step: int | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
        self.request_key = request_key
        self.step = step


class DeliveryError(BevillingError):
    """Mail could not be handed to the SMTP server (see mail.smtp_delivery for the kinds)."""

    exit_code = 6
