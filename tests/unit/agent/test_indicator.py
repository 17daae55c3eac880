"""Indicators: reader escapes from the profiles, console line, GPIO, and failure isolation."""

from __future__ import annotations

import io

import pytest
from idstation.hal.errors import DeviceError
from idstation.hal.indicator import (
    ConsoleIndicator,
    GpioIndicator,
    MultiIndicator,
    ReaderIndicator,
    SimIndicator,
    available_reader_profiles,
    load_reader_profile,
    profile_for_reader_name,
)
from idstation.hal.ports import Signal


class EscapeReader:
    """A reader that accepts escape commands and remembers which ones reached it."""

    name = "fake"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[int, bytes]] = []

    def control(self, code: int, data: bytes) -> bytes:
        if self.fail:
            raise DeviceError("escape refused")
        self.sent.append((code, data))
        return b"\x90\x00"


def test_the_three_required_reader_profiles_ship() -> None:
    assert {"acs-acr122u", "acs-acr1252u", "identiv-utrust-3700f", "generic"} <= set(available_reader_profiles())


def test_acr1252u_profile_has_extended_length_and_led_buzzer_escapes() -> None:
    profile = load_reader_profile("acs-acr1252u")
    assert profile.extended_length
    assert profile.commands[Signal.OK] == (bytes.fromhex("E0000029 0102"), bytes.fromhex("E0000028010A"))


def test_acr122u_profile_uses_short_apdus_and_the_ff0040_pseudo_apdu() -> None:
    profile = load_reader_profile("acs-acr122u")
    assert not profile.extended_length
    assert all(cmd[0][:3] == b"\xff\x00\x40" for cmd in profile.commands.values())


def test_reader_names_pick_their_profile() -> None:
    assert profile_for_reader_name("ACS ACR1252 1S CL Reader [ACR1252 Dual Reader PICC] 00 00").key == "acs-acr1252u"
    assert profile_for_reader_name("Identiv uTrust 3700 F CL Reader 0").key == "identiv-utrust-3700f"
    assert profile_for_reader_name("Virtual PCD 00 00").key == "generic"


def test_an_unknown_profile_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="no reader profile"):
        load_reader_profile("acme-9000")


def test_reader_indicator_sends_the_profile_commands_for_a_signal() -> None:
    reader = EscapeReader()
    profile = load_reader_profile("acs-acr1252u")
    ReaderIndicator(reader, profile).signal(Signal.ERROR, "x")
    assert reader.sent == [(profile.escape_code, c) for c in profile.commands[Signal.ERROR]]


def test_a_failing_reader_led_goes_quiet_and_never_raises() -> None:
    reader = EscapeReader(fail=True)
    indicator = ReaderIndicator(reader, load_reader_profile("acs-acr1252u"))
    indicator.signal(Signal.OK)
    indicator.signal(Signal.ERROR)
    assert indicator.failed


def test_firmware_led_readers_get_no_escape_commands() -> None:
    reader = EscapeReader()
    ReaderIndicator(reader, load_reader_profile("identiv-utrust-3700f")).signal(Signal.OK)
    assert reader.sent == []


def test_console_writes_one_line_per_signal_off_a_tty() -> None:
    out = io.StringIO()
    console = ConsoleIndicator(out)
    console.signal(Signal.OK, "card read")
    console.signal(Signal.WARN, "show the QR side")
    assert out.getvalue().splitlines() == ["[   OK] card read", "[CHECK] show the QR side"]


class FakeGpio:
    """gpiozero-shaped pin factory with state."""

    class LED:
        def __init__(self, pin: int) -> None:
            self.pin, self.is_lit = pin, False

        def on(self) -> None:
            self.is_lit = True

        def off(self) -> None:
            self.is_lit = False

        def close(self) -> None:
            pass

    class Buzzer:
        def __init__(self, pin: int) -> None:
            self.pin, self.beeps = pin, 0

        def blink(self, on_time: float, off_time: float, n: int, background: bool) -> None:
            self.beeps += n

        def close(self) -> None:
            pass


def test_gpio_lights_the_error_led_and_beeps_on_error() -> None:
    gpio = GpioIndicator(17, 27, 22, factory=FakeGpio)
    gpio.signal(Signal.ERROR)
    assert (gpio._ok.is_lit, gpio._error.is_lit, gpio._buzzer.beeps) == (False, True, 1)
    gpio.signal(Signal.IDLE)
    assert not gpio._error.is_lit


def test_multi_indicator_fans_out_and_remembers_the_last_signal() -> None:
    a, b = SimIndicator(), SimIndicator()
    multi = MultiIndicator([a, b])
    multi.signal(Signal.BUSY, "reading")
    assert a.signals() == b.signals() == [Signal.BUSY]
    assert multi.last == (Signal.BUSY, "reading")
