"""The one settings class: every knob comes from `BEVILLING_*` environment variables or `.env`."""

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OFFSETS = (365, 180, 90, 30, 7)


class Settings(BaseSettings):
    """Runtime configuration; secrets may instead come from Prefect Secret blocks."""

    model_config = SettingsConfigDict(
        env_prefix="BEVILLING_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'bevilling.db'}",
        description="SQLAlchemy URL; postgresql+psycopg://… for PostgreSQL.",
    )
    timezone: str = "Europe/Copenhagen"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the SMTP password."
    )
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = 30.0
    mail_from: str = "bevilling@bevilling.example.org"
    mail_from_name: str = "Bevilling – Borgmesterens Afdeling"
    mail_domain: str = Field(
        default="bevilling.example.org",
        description="Domain of the approvals+<token>@ reply address and of Message-IDs.",
    )
    send_rate_per_minute: int | None = Field(
        default=None, description="Upper bound on messages per minute; None = unlimited."
    )
    send_concurrency: int = Field(default=4, ge=1, le=64)
    delivery_batch_size: int = Field(default=200, ge=1, le=5000)
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_backoff_seconds: float = Field(default=30.0, gt=0)
    delivery_lease_seconds: int = Field(default=300, ge=5)

    reminder_offsets: tuple[int, ...] = DEFAULT_OFFSETS
    holiday_categories: tuple[str, ...] = Field(
        default=("public", "optional"),
        description="holidays.DK categories that close the office; 'optional' adds 1 May, "
        "Grundlovsdag, 24 and 31 December.",
    )
    extra_closed_dates: tuple[str, ...] = Field(
        default=(), description="Further closed days, ISO dates (e.g. a local bridge day)."
    )

    token_secret: SecretStr | None = Field(
        default=None, description="Key for signed confirm links; never commit it."
    )
    token_secret_block: str | None = None
    audit_key: SecretStr | None = Field(
        default=None, description="HMAC key of the audit chain (outside the database); "
        "unset: a key derived from TOKEN_SECRET; neither: unkeyed SHA-256."
    )
    token_secret_file: Path = Field(
        default=PROJECT_ROOT / "var" / "token-secret",
        description="Local link-signing key written by `bevilling init` when neither "
        "TOKEN_SECRET nor TOKEN_SECRET_BLOCK is set (one machine, `make run`).",
    )
    token_secret_file_allowed: bool = Field(
        default=True,
        description="False in production: refuse the local file, require TOKEN_SECRET(_BLOCK).",
    )
    token_valid_days: int = 30
    web_base_url: str = "http://127.0.0.1:8000"
    local_stack_file: Path = Field(
        default=PROJECT_ROOT / "var" / "prefect-api-url",
        description="Written by `make run` while it runs: the local Prefect server's API URL "
        "and home, so the CLI runs flows there without PREFECT_API_URL being set.",
    )
    policy_file: Path = PROJECT_ROOT / "data" / "approval-policies.yaml"
    max_notices_per_step: int = Field(
        default=2, ge=0, description="Clarifying/explaining mails per step, to stop mail loops."
    )
    inbound_max_bytes: int = Field(default=10_000_000, ge=10_000)
    inbound_raw_keep_bytes: int = Field(
        default=262_144, ge=0,
        description="Of a quarantined message, at most this many raw bytes are kept for audit.")
    inbound_raw_retention_days: int = Field(
        default=90, ge=1,
        description="Raw bytes of quarantined messages are dropped after this many days "
        "(the inbound row, its outcome and its audit events stay).")
    auth_policy: str = Field(
        default="accept-unverified",
        pattern="^(accept-unverified|require-pass)$",
        description="accept-unverified: a reply counts on token + From unless a trusted "
        "Authentication-Results header says it failed; require-pass: it must say pass.",
    )
    admin_emails: tuple[str, ...] = Field(
        default=(), description="Who is told when an escalation runs out (besides active people "
        "with the admin role)."
    )
    trusted_authserv_ids: tuple[str, ...] = Field(
        default=(), description="authserv-ids of our own MTA whose Authentication-Results we trust."
    )
    trust_unlabelled_authentication_results: bool = Field(
        default=False,
        description="Trust Authentication-Results without an authserv-id "
        "(Microsoft 365 writes them so); only when our own MTA strips incoming ones.",
    )
    templates_dir: Path = PROJECT_ROOT / "templates"


def local_token_secret(settings: Settings) -> str | None:
    """The key in `token_secret_file` when the local file is allowed and present, else None."""
    path = settings.token_secret_file
    if not settings.token_secret_file_allowed or not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def create_local_token_secret(settings: Settings) -> Path | None:
    """Write a random key to `token_secret_file` (mode 600) once, when nothing else names one.

    Returns the path when the file is (now) the key in use, None when the environment or a
    Prefect block provides it or the local file is not allowed.
    """
    if settings.token_secret is not None or settings.token_secret_block:
        return None
    if not settings.token_secret_file_allowed:
        return None
    path = settings.token_secret_file
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with 0600 from the start: the key is never readable by others, not even briefly.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process (tests build their own `Settings` instead)."""
    return Settings()
