"""Everything a workflow operation needs besides the session: settings, clock, calendar, policy."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from config.closed_days import working_calendar
from config.settings import Settings, local_token_secret
from domain.approval_policy import ApprovalPolicy
from domain.errors import ConfigurationError
from domain.working_days import WorkingCalendar
from loading.policy_file import load_policies

__all__ = ["ConfigurationError", "TokenSecretMissing", "WorkflowContext", "make_context",
           "token_secret"]  # ConfigurationError: re-exported from domain.errors for old callers


class TokenSecretMissing(ConfigurationError):
    """Neither BEVILLING_TOKEN_SECRET nor BEVILLING_TOKEN_SECRET_BLOCK is set."""

    exit_code = 1  # the CLI exited 1 for this before the tree; scripts (and test_cli) rely on it


@dataclass(frozen=True)
class WorkflowContext:
    """Settings, the moment of the operation and the working calendar around it."""

    settings: Settings
    now: datetime
    today: date
    calendar: WorkingCalendar
    token_secret: str

    @property
    def token_lifetime(self) -> timedelta:
        """How long reply tokens and links stay valid."""
        return timedelta(days=self.settings.token_valid_days)

    def policy(self, name: str = "") -> ApprovalPolicy:
        """The named approval policy, or the first in the policy file."""
        policies = _policies(self.settings.policy_file)
        if not name:
            return policies[0]
        for policy in policies:
            if policy.name == name:
                return policy
        raise ConfigurationError(
            f"no approval policy named {name!r} in {self.settings.policy_file}"
        )


@lru_cache(maxsize=4)
def _policies(path: Path) -> tuple[ApprovalPolicy, ...]:
    policies = tuple(load_policies(path))
    if not policies:
        raise ConfigurationError(f"{path} holds no approval policy")
    return policies


def token_secret(settings: Settings) -> str:
    """The link-signing secret: BEVILLING_TOKEN_SECRET, a Prefect Secret block, or the local file.

    The local file (`bevilling init` writes it) counts only while `token_secret_file_allowed`.
    """
    if settings.token_secret is not None and settings.token_secret.get_secret_value():
        return settings.token_secret.get_secret_value()
    if settings.token_secret_block:
        from prefect.blocks.system import Secret

        block: Secret[str] = Secret.load(settings.token_secret_block)  # type: ignore[assignment]
        return str(block.get())
    local = local_token_secret(settings)
    if local is not None:
        return local
    if not settings.token_secret_file_allowed:
        raise TokenSecretMissing(
            "no token secret: set BEVILLING_TOKEN_SECRET or BEVILLING_TOKEN_SECRET_BLOCK "
            f"(the local file {settings.token_secret_file} is refused: "
            "BEVILLING_TOKEN_SECRET_FILE_ALLOWED=false)"
        )
    raise TokenSecretMissing(
        "no token secret: set BEVILLING_TOKEN_SECRET or BEVILLING_TOKEN_SECRET_BLOCK, "
        f"or run `bevilling init` to create the local {settings.token_secret_file}"
    )


_calendars: dict[tuple[int, tuple[str, ...], tuple[str, ...]], WorkingCalendar] = {}


def make_context(
    settings: Settings, *, now: datetime, secret: str | None = None
) -> WorkflowContext:
    """A context for an operation happening at `now` (aware)."""
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    key = (today.year, settings.holiday_categories, settings.extra_closed_dates)
    calendar = _calendars.get(key)
    if calendar is None:
        calendar = _calendars[key] = working_calendar(settings, around=today)
    return WorkflowContext(
        settings, now, today, calendar, secret if secret is not None else token_secret(settings)
    )
