"""SMTP delivery with aiosmtplib: a few reused connections, bounded concurrency, a rate limit.

Errors are classified, never swallowed::

    DeliveryError              (outbox_id, code, message)
    ├── TransientDeliveryError 4xx, timeouts, dropped or refused connections → retry later
    └── PermanentDeliveryError 5xx → failed, audited, reported
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiosmtplib

from domain import errors
from models.outbox import ClaimedMail


class DeliveryError(errors.DeliveryError):
    """A message could not be delivered; carries the outbox id and the SMTP code if any."""

    def __init__(self, message: str, *, outbox_id: int, code: int | None = None) -> None:
        super().__init__(message)
        self.outbox_id = outbox_id
        self.code = code


class TransientDeliveryError(DeliveryError):
    """Try again later: 4xx reply, timeout, or a connection problem."""


class PermanentDeliveryError(DeliveryError):
    """Do not try again: the server answered 5xx."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout: float = 30.0


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one message: `error` is None when the server accepted it (250)."""

    mail: ClaimedMail
    error: DeliveryError | None


class RateLimiter:
    """At most `per_minute` sends per minute, spread evenly (a leaky bucket)."""

    def __init__(self, per_minute: int | None) -> None:
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Sleep until the next send is allowed."""
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)


def classify(error: BaseException, *, outbox_id: int) -> DeliveryError:
    """Map an aiosmtplib/OS error to a transient or permanent DeliveryError."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        code = min(codes) if codes else None
        transient = any(400 <= c < 500 for c in codes)
        cls = TransientDeliveryError if transient else PermanentDeliveryError
        return cls(f"recipients refused: {error}", outbox_id=outbox_id, code=code)
    if isinstance(error, aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected
                  | aiosmtplib.SMTPConnectError):
        return TransientDeliveryError(f"{type(error).__name__}: {error}", outbox_id=outbox_id)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        cls = TransientDeliveryError if error.code < 500 else PermanentDeliveryError
        return cls(f"{error.code} {error.message}", outbox_id=outbox_id, code=error.code)
    if isinstance(error, OSError | TimeoutError | aiosmtplib.SMTPException):
        return TransientDeliveryError(f"{type(error).__name__}: {error}", outbox_id=outbox_id)
    raise error


class _Connection:
    """One reusable SMTP connection; reopened after any failure."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, raw: bytes, *, sender: str, recipients: list[str]) -> None:
        if self._client is None or not self._client.is_connected:
            config = self._config
            client = aiosmtplib.SMTP(
                hostname=config.host, port=config.port, timeout=config.timeout,
                use_tls=config.use_tls, start_tls=config.starttls or None,
                username=config.username, password=config.password,
            )
            await client.connect()
            self._client = client
        # Our bytes are 7-bit (mail.mime); anything else must at least be declared as 8-bit.
        options = [] if raw.isascii() else ["BODY=8BITMIME"]
        refused, _ = await self._client.sendmail(sender, recipients, raw, mail_options=options)
        if refused:
            # sendmail() does not raise when only some recipients are refused: make it an error.
            raise aiosmtplib.SMTPRecipientsRefused([
                aiosmtplib.SMTPRecipientRefused(response.code, response.message, rcpt)
                for rcpt, response in refused.items()])

    async def reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


async def deliver(
    mails: Sequence[ClaimedMail],
    *,
    config: SmtpConfig,
    build: Callable[[ClaimedMail], bytes],
    envelope_from: Callable[[ClaimedMail], str],
    concurrency: int,
    limiter: RateLimiter,
    on_result: Callable[[DeliveryResult], Awaitable[None]],
) -> list[DeliveryResult]:
    """Send every mail once over at most `concurrency` connections; report each result.

    `build` returns the wire bytes (normally those stored at enqueue); `on_result` is awaited
    for each result before that connection sends its next message.
    """
    queue: asyncio.Queue[ClaimedMail] = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)
    results: list[DeliveryResult] = []

    async def worker() -> None:
        connection = _Connection(config)
        try:
            while True:
                try:
                    mail = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await limiter.wait()
                error: DeliveryError | None = None
                try:
                    await connection.send(build(mail), sender=envelope_from(mail),
                                          recipients=list(mail.recipients))
                except Exception as exc:  # classified below; anything unknown re-raises
                    error = classify(exc, outbox_id=mail.id)
                    await connection.reset()
                result = DeliveryResult(mail, error)
                results.append(result)
                await on_result(result)
        finally:
            await connection.close()

    workers = max(1, min(concurrency, len(mails)))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return results
