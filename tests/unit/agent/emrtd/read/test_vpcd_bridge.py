"""The vpcd bridge speaks vpcd's framing to a fake vpcd on loopback (no pcscd needed)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
from idstation.agent.emrtd.virtual_card.vpcd import DEFAULT_ATR, VpcdBridge, VpcdCard, frame
from idstation.hal.errors import CardRemoved

ATR = bytes.fromhex("3B8880010000000000000000")


class Card:
    def __init__(self, pull_after: int | None = None) -> None:
        self.resets = 0
        self.count = 0
        self.pull_after = pull_after

    def reset(self) -> None:
        self.resets += 1
        self.count = 0

    def __call__(self, apdu: bytes) -> bytes:
        self.count += 1
        if self.pull_after is not None and self.count >= self.pull_after:
            raise CardRemoved("pulled")
        return apdu[::-1] + b"\x90\x00"


class FakeVpcd:
    """The reader side of vpcd: listens, accepts the card, sends controls and APDUs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5.0)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5.0)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(frame(payload))

    def recv(self) -> bytes | None:
        assert self.conn is not None
        head = self._exact(2)
        if head is None:
            return None
        return self._exact(int.from_bytes(head, "big"))

    def _exact(self, n: int) -> bytes | None:
        assert self.conn is not None
        out = b""
        for _ in range(1000):
            if len(out) == n:
                return out
            chunk = self.conn.recv(n - len(out))
            if not chunk:
                return None
            out += chunk
        raise AssertionError("message did not complete")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@contextlib.contextmanager
def serving(bridge: VpcdBridge) -> Iterator[VpcdBridge]:
    bridge.start()
    try:
        yield bridge
    finally:
        bridge.stop()


def test_frame_prefixes_a_big_endian_length() -> None:
    assert frame(b"\x01\x02\x03") == b"\x00\x03\x01\x02\x03"


def test_card_answers_get_atr_and_apdus_and_resets_on_power_controls() -> None:
    card = Card()
    vcard = VpcdCard(card, ATR)
    assert vcard.answer(b"\x04") == ATR
    assert vcard.answer(b"\x01") is None
    assert vcard.answer(b"\x02") is None
    assert vcard.answer(b"\x00") is None
    assert card.resets == 3
    assert vcard.answer(b"\x00\xa4\x00\x00") == b"\x00\x00\xa4\x00\x90\x00"


def test_bridge_serves_atr_and_apdus_over_tcp(vpcd: FakeVpcd) -> None:
    card = Card()
    with serving(VpcdBridge(card, port=vpcd.port, atr=ATR)):
        vpcd.accept()
        vpcd.send(b"\x01")
        vpcd.send(b"\x04")
        assert vpcd.recv() == ATR
        vpcd.send(b"\x00\xb0\x00\x00\x10")
        assert vpcd.recv() == b"\x10\x00\x00\xb0\x00\x90\x00"
    assert card.resets == 1


def test_bridge_answers_the_default_atr_when_none_is_given(vpcd: FakeVpcd) -> None:
    bridge = VpcdBridge(Card(), port=vpcd.port)
    with serving(bridge):
        vpcd.accept()
        assert bridge.wait_connected(True, 5.0)
        vpcd.send(b"\x04")
        assert vpcd.recv() == DEFAULT_ATR


def test_card_removed_by_the_handler_closes_the_connection(vpcd: FakeVpcd) -> None:
    bridge = VpcdBridge(Card(pull_after=2), port=vpcd.port)
    with serving(bridge):
        vpcd.accept()
        vpcd.send(b"\x00\x00\x00\x00")
        assert vpcd.recv() is not None
        vpcd.send(b"\x00\x00\x00\x00")
        assert vpcd.recv() is None  # connection closed: the card vanished
        assert bridge.wait_connected(False, 5.0)


def test_pulled_card_comes_back_after_reinsert_delay_and_answers(vpcd: FakeVpcd) -> None:
    card = Card(pull_after=2)
    with serving(VpcdBridge(card, port=vpcd.port, reinsert_after=0.05)):
        vpcd.accept()
        vpcd.send(b"\x00\x00\x00\x00")
        vpcd.recv()
        vpcd.send(b"\x00\x00\x00\x00")
        assert vpcd.recv() is None
        vpcd.accept()  # the card reconnects
        vpcd.send(b"\x00\x01\x02\x03")
        assert vpcd.recv() == b"\x03\x02\x01\x00\x90\x00"


def test_remove_and_insert_swap_the_card(vpcd: FakeVpcd) -> None:
    bridge = VpcdBridge(Card(), port=vpcd.port)
    with serving(bridge):
        vpcd.accept()
        assert bridge.wait_connected(True, 5.0)
        bridge.remove()
        assert vpcd.recv() is None
        bridge.insert(lambda apdu: b"\x6a\x82")
        vpcd.accept()
        vpcd.send(b"\x00\xa4\x02\x0c\x02\x01\x1e")
        assert vpcd.recv() == b"\x6a\x82"


def test_bridge_retries_until_vpcd_listens() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens on the port now
    bridge = VpcdBridge(Card(), port=port)
    with serving(bridge):
        assert not bridge.wait_connected(True, 0.2)
        server = socket.create_server(("127.0.0.1", port))
        try:
            server.settimeout(5.0)
            conn, _ = server.accept()
            conn.close()
        finally:
            server.close()
