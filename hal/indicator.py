"""Feedback to the clerk: a console status line, the reader's LED/buzzer, GPIO LED/buzzer.

Every backend implements the ``Indicator`` port (``signal(Signal, message)``) and never raises
into the daemon: a feedback device that fails is logged once and then left alone, because a
broken LED must not stop a card from being read. ``SimIndicator`` records what the clerk would
have seen, for tests. Reader escape commands come from the reader's profile in
``firmware_cfg/readers/<name>.toml`` (``ReaderProfile``).
"""

from __future__ import annotations

import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, ClassVar

import structlog
from idstation.hal.errors import DeviceError
from idstation.hal.ports import CardReader, Signal

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReaderProfile:
    """What a reader model can do (from ``firmware_cfg/readers/*.toml``)."""

    key: str
    name: str
    match: tuple[str, ...] = ()
    extended_length: bool = False
    max_apdu: int = 261
    max_response: int = 256
    indicator_kind: str = "none"  # none | escape | pseudo_apdu | firmware
    escape_code: int = 0
    commands: dict[Signal, tuple[bytes, ...]] = field(default_factory=dict)


def _profiles_dir() -> Path:
    return Path(str(resources.files("idstation.firmware_cfg") / "readers"))


def _hex_list(value: Any, where: str) -> tuple[bytes, ...]:
    items = [value] if isinstance(value, str) else list(value)
    try:
        return tuple(bytes.fromhex(str(item)) for item in items)
    except ValueError:
        raise DeviceError(f"reader profile {where}: not hex bytes") from None


def load_reader_profile(name_or_path: str | Path) -> ReaderProfile:
    """Load a profile by key (``acs-acr1252u``) or path; DeviceError when missing or malformed."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = _profiles_dir() / f"{name_or_path}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeviceError(f"no reader profile {path.stem!r} (looked in {path.parent})") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeviceError(f"reader profile {path.name} unreadable: {type(exc).__name__}") from None
    ind = data.get("indicator", {})
    commands = {s: _hex_list(ind[s.value], f"{path.stem}.{s.value}") for s in Signal if s.value in ind}
    return ReaderProfile(
        key=path.stem,
        name=str(data.get("name", path.stem)),
        match=tuple(data.get("match", ())),
        extended_length=bool(data.get("extended_length", False)),
        max_apdu=int(data.get("max_apdu", 261)),
        max_response=int(data.get("max_response", 256)),
        indicator_kind=str(ind.get("kind", "none")),
        escape_code=int(ind.get("escape_code", 0)),
        commands=commands,
    )


def available_reader_profiles() -> list[str]:
    return sorted(p.stem for p in _profiles_dir().glob("*.toml"))


def profile_for_reader_name(reader_name: str) -> ReaderProfile:
    """The shipped profile whose ``match`` strings occur in a PC/SC reader name, else ``generic``."""
    for key in available_reader_profiles():
        profile = load_reader_profile(key)
        if any(m.lower() in reader_name.lower() for m in profile.match):
            return profile
    return load_reader_profile("generic")


class _Guarded:
    """Shared 'log once, then go quiet' behaviour for devices that may fail."""

    def __init__(self, what: str) -> None:
        self._what = what
        self.failed = False

    def _guard(self, action: Callable[[], None]) -> None:
        if self.failed:
            return
        try:
            action()
        except (DeviceError, OSError) as exc:
            self.failed = True
            log.warning("indicator_failed", device=self._what, error=type(exc).__name__)


class ConsoleIndicator(_Guarded):
    """One status line for the local console: rewritten in place on a TTY, one line per change otherwise."""

    LABELS: ClassVar[dict[Signal, str]] = {
        Signal.IDLE: "READY",
        Signal.BUSY: "BUSY",
        Signal.OK: "OK",
        Signal.WARN: "CHECK",
        Signal.ERROR: "ERROR",
    }

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__("console")
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())

    def line(self, signal: Signal, message: str) -> str:
        return f"[{self.LABELS[signal]:>5}] {message}".rstrip()

    def signal(self, signal: Signal, message: str = "") -> None:
        text = self.line(signal, message)

        def write() -> None:
            if self._tty:
                self._stream.write("\r\x1b[2K" + text)
            else:
                self._stream.write(text + "\n")
            self._stream.flush()

        self._guard(write)


class ReaderIndicator(_Guarded):
    """The reader's own LED and buzzer, through the escape commands of its profile."""

    def __init__(self, reader: CardReader, profile: ReaderProfile) -> None:
        super().__init__(f"reader:{profile.key}")
        self._reader = reader
        self._profile = profile
        self.enabled = profile.indicator_kind in {"escape", "pseudo_apdu"} and bool(profile.commands)

    def signal(self, signal: Signal, message: str = "") -> None:
        commands = self._profile.commands.get(signal, ())
        if not self.enabled or not commands:
            return

        def send() -> None:
            for command in commands:
                self._reader.control(self._profile.escape_code, command)

        self._guard(send)


class GpioIndicator(_Guarded):
    """LEDs and a buzzer on the Pi's GPIO header, through gpiozero (imported only when configured)."""

    PATTERNS: ClassVar[dict[Signal, tuple[str | None, float, int]]] = {
        # (which LED, beep seconds, beeps)
        Signal.IDLE: (None, 0.0, 0),
        Signal.BUSY: ("ok", 0.0, 0),
        Signal.OK: ("ok", 0.1, 1),
        Signal.WARN: ("both", 0.1, 2),
        Signal.ERROR: ("error", 0.4, 1),
    }

    def __init__(self, led_ok: int | None, led_error: int | None, buzzer: int | None, factory: Any = None) -> None:
        super().__init__("gpio")
        if factory is None:
            import gpiozero  # only on a Pi with GPIO wired

            factory = gpiozero
        self._ok = factory.LED(led_ok) if led_ok is not None else None
        self._error = factory.LED(led_error) if led_error is not None else None
        self._buzzer = factory.Buzzer(buzzer) if buzzer is not None else None

    def signal(self, signal: Signal, message: str = "") -> None:
        which, beep_s, beeps = self.PATTERNS[signal]

        def drive() -> None:
            for led, name in ((self._ok, "ok"), (self._error, "error")):
                if led is not None:
                    led.on() if which in {name, "both"} else led.off()
            if self._buzzer is not None and beeps:
                self._buzzer.blink(on_time=beep_s, off_time=0.1, n=beeps, background=True)

        self._guard(drive)

    def close(self) -> None:
        for dev in (self._ok, self._error, self._buzzer):
            if dev is not None:
                dev.close()


@dataclass(frozen=True, slots=True)
class Signalled:
    signal: Signal
    message: str
    at: float


class SimIndicator:
    """Records every signal (what the clerk would have seen), thread-safe; for tests and the demo."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.history: list[Signalled] = []

    def signal(self, signal: Signal, message: str = "") -> None:
        with self._lock:
            self.history.append(Signalled(signal, message, self._clock()))

    def signals(self) -> list[Signal]:
        with self._lock:
            return [s.signal for s in self.history]

    @property
    def last(self) -> Signalled | None:
        with self._lock:
            return self.history[-1] if self.history else None


class MultiIndicator:
    """Fans one signal out to several indicators; remembers the last one for the status message."""

    def __init__(self, indicators: Iterable[Any]) -> None:
        self._items = list(indicators)
        self.last: tuple[Signal, str] = (Signal.IDLE, "")

    def signal(self, signal: Signal, message: str = "") -> None:
        self.last = (signal, message)
        for item in self._items:
            item.signal(signal, message)

    def close(self) -> None:
        for item in self._items:
            close = getattr(item, "close", None)
            if close is not None:
                close()
