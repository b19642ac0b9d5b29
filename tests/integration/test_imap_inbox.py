"""ImapInbox against a real IMAP server (pymap in a subprocess, over TCP on 127.0.0.1)."""

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mail.imap_inbox import (
    FetchedMessage,
    ImapConfig,
    ImapInbox,
    ImapPermanentError,
    ImapTransientError,
)
from tests.support.imap_server import ImapServer, free_port, running_imap_server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    with running_imap_server(tmp_path_factory.mktemp("imap")) as running:
        yield running


@pytest.fixture
def server(shared_server: ImapServer) -> ImapServer:
    """The module's server, emptied; starting pymap per test would double the run time."""
    shared_server.reset()
    return shared_server


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ImapServer]:
    """A server of this test's own, for tests that stop or freeze it."""
    with running_imap_server(tmp_path) as running:
        yield running


def config_for(server: ImapServer, **overrides: object) -> ImapConfig:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "password": server.password,
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return ImapConfig(**values)  # type: ignore[arg-type]


def make_message(number: int) -> bytes:
    return (
        f"From: approver{number}@example.dk\r\n"
        f"To: approvals+token{number}@bevilling.example.dk\r\n"
        f"Subject: Re: Bevilling {number}\r\n"
        f"Message-ID: <reply-{number}@example.dk>\r\n"
        "\r\n"
        f"Godkendt {number}\r\n"
    ).encode()


def append_five(server: ImapServer) -> list[int]:
    return server.append_many([make_message(number) for number in range(1, 6)])


async def test_fetch_batch_pages_through_the_inbox_in_uid_order(server: ImapServer) -> None:
    uids = append_five(server)

    async with ImapInbox(config_for(server)) as inbox:
        first = await inbox.fetch_batch(after_uid=0, limit=3)
        rest = await inbox.fetch_batch(after_uid=first[-1].uid, limit=3)

    assert [message.uid for message in first] == uids[:3]
    assert [message.uid for message in rest] == uids[3:]
    assert [message.raw for message in first + rest] == [make_message(n) for n in range(1, 6)]
    assert {message.uidvalidity for message in first + rest} == {inbox.uidvalidity}


async def test_after_the_highest_uid_there_is_nothing_even_though_n_star_matches_it(
    server: ImapServer,
) -> None:
    uids = append_five(server)

    async with ImapInbox(config_for(server)) as inbox:
        assert await inbox.fetch_batch(after_uid=uids[-1], limit=10) == []
        assert await inbox.fetch_batch(after_uid=uids[-1] + 1000, limit=10) == []


async def test_an_empty_inbox_gives_an_empty_batch(server: ImapServer) -> None:
    async with ImapInbox(config_for(server)) as inbox:
        assert await inbox.fetch_batch(after_uid=0, limit=10) == []


async def test_fetching_does_not_mark_messages_seen(server: ImapServer) -> None:
    append_five(server)

    async with ImapInbox(config_for(server)) as inbox:
        fetched = await inbox.fetch_batch(after_uid=0, limit=5)

    assert len(fetched) == 5
    assert all("\\Seen" not in flags for flags in server.flags().values())


async def test_move_takes_messages_out_of_the_inbox_into_processed(server: ImapServer) -> None:
    uids = append_five(server)

    async with ImapInbox(config_for(server)) as inbox:
        handled = await inbox.fetch_batch(after_uid=0, limit=3)
        await inbox.move([message.uid for message in handled], to="Processed")
        remaining = await inbox.fetch_batch(after_uid=0, limit=10)

    assert [message.uid for message in remaining] == uids[3:]
    assert server.uids() == uids[3:]
    assert len(server.uids(mailbox="Processed")) == 3
    with server.session() as client:
        client.select("Processed", readonly=True)
        _, data = client.uid("SEARCH", "HEADER", "Message-ID", "reply-2@example.dk")
    assert data[0]


class NoMoveInbox(ImapInbox):
    """Takes the fallback path of servers without MOVE; pymap always offers MOVE."""

    def _has_capability(self, name: str) -> bool:
        return name != "MOVE" and super()._has_capability(name)


async def test_move_without_the_move_capability_copies_and_expunges(server: ImapServer) -> None:
    uids = append_five(server)

    async with NoMoveInbox(config_for(server)) as inbox:
        await inbox.move(uids[:2], to="Quarantine")

    assert server.uids() == uids[2:]
    assert len(server.uids(mailbox="Quarantine")) == 2


async def test_processed_and_quarantine_folders_are_created_with_any_name(
    server: ImapServer,
) -> None:
    uids = append_five(server)
    config = config_for(server, processed_mailbox="Færdigbehandlet", quarantine_mailbox="Karantæne")

    for _ in range(2):  # the second connection finds the folders already there
        async with ImapInbox(config) as inbox:
            await inbox.move(uids[:1], to="Færdigbehandlet")
            uids = uids[1:]

    with server.session() as client:
        _, folders = client.list()
    names = b"\n".join(name for name in folders if isinstance(name, bytes))
    assert b"F&AOY-rdigbehandlet" in names
    assert b"Karant&AOY-ne" in names
    assert len(server.uids(mailbox="F&AOY-rdigbehandlet")) == 2


async def test_uidvalidity_is_stable_across_connections_and_changes_with_the_mailbox(
    server: ImapServer,
) -> None:
    with server.session() as client:
        client.create("Indbakke")
    config = config_for(server, mailbox="Indbakke")

    async with ImapInbox(config) as inbox:
        first = inbox.uidvalidity
    async with ImapInbox(config) as inbox:
        second = inbox.uidvalidity
    server.recreate("Indbakke")
    async with ImapInbox(config) as inbox:
        after_recreate = inbox.uidvalidity

    assert first == second > 0
    assert after_recreate != first


async def test_fetched_messages_carry_the_uidvalidity_the_server_reports(
    server: ImapServer,
) -> None:
    uid = server.append(make_message(1))

    async with ImapInbox(config_for(server)) as inbox:
        fetched = await inbox.fetch_batch(after_uid=0, limit=1)

    expected = server.uidvalidity()
    assert inbox.uidvalidity == expected
    assert fetched == [FetchedMessage(uid=uid, uidvalidity=expected, raw=make_message(1))]


async def test_a_wrong_password_is_a_permanent_error(server: ImapServer) -> None:
    with pytest.raises(ImapPermanentError) as caught:
        async with ImapInbox(config_for(server, password="wrong")):
            pass

    assert caught.value.command == "LOGIN"
    assert caught.value.response is not None
    assert caught.value.response.startswith("NO")
    assert "wrong" not in str(caught.value)


async def test_a_closed_port_is_a_transient_error() -> None:
    config = ImapConfig(
        host="127.0.0.1", port=free_port(), username="x", password="y", timeout_seconds=2.0
    )

    with pytest.raises(ImapTransientError) as caught:
        async with ImapInbox(config):
            pass

    assert caught.value.command == "CONNECT"


async def test_a_server_that_never_greets_is_a_transient_error() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        config = ImapConfig(
            host="127.0.0.1", port=port, username="x", password="y", timeout_seconds=0.5
        )

        with pytest.raises(ImapTransientError) as caught:
            async with ImapInbox(config):
                pass

    assert caught.value.command == "CONNECT"


async def test_a_server_gone_mid_session_fails_fast_and_transiently(own_server: ImapServer) -> None:
    append_five(own_server)

    async with ImapInbox(config_for(own_server, timeout_seconds=10.0)) as inbox:
        own_server.stop()
        started = time.monotonic()
        with pytest.raises(ImapTransientError) as caught:
            await inbox.fetch_batch(after_uid=0, limit=5)

    assert caught.value.command == "UID SEARCH"
    assert time.monotonic() - started < 5.0


async def test_a_server_that_stops_answering_times_out_and_the_connection_is_dropped(
    own_server: ImapServer,
) -> None:
    uids = append_five(own_server)

    async with ImapInbox(config_for(own_server, timeout_seconds=0.5)) as inbox:
        own_server.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(ImapTransientError, match="no answer") as first:
                await inbox.fetch_batch(after_uid=0, limit=5)
            with pytest.raises(ImapTransientError, match="connection lost"):
                await inbox.move(uids, to="Processed")
        finally:
            own_server.process.send_signal(signal.SIGCONT)

    assert first.value.command == "UID SEARCH"
    assert own_server.uids() == uids


async def test_using_the_inbox_outside_async_with_is_refused(server: ImapServer) -> None:
    inbox = ImapInbox(config_for(server))
    with pytest.raises(RuntimeError):
        _ = inbox.uidvalidity
    async with inbox:
        pass

    with pytest.raises(RuntimeError):
        await inbox.fetch_batch(after_uid=0, limit=1)
    with pytest.raises(RuntimeError):
        await inbox.move([101], to="Processed")
