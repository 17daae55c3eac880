"""The box's configuration: one TOML file plus environment overrides, validated with pydantic.

Sources, later ones winning: the built-in defaults, the TOML file (``/etc/idstation/idstation.toml``
unless ``--config`` or ``IDSTATION_CONFIG`` names another), then environment variables
``IDSTATION_<SECTION>__<KEY>`` (``IDSTATION_BROKER__URL``, ``IDSTATION_READER__KIND``) or
``IDSTATION_<KEY>`` for top-level keys (``IDSTATION_STATE_DIR``). Values in the environment are
parsed as TOML values when they parse (numbers, booleans, arrays), else taken as strings.

Every mistake is reported with its dotted key and the reason (:class:`ConfigProblem`); unknown
keys are mistakes too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from idstation.agent.errors import ConfigError
from idstation.hal.storage import DEFAULT_STATE_DIR
from idstation.mqtt.connection import parse_broker_url
from idstation.mqtt.enrolment.pairing import NAME_RULE, valid_name
from idstation.mqtt.errors import PublishError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_PATH = Path("/etc/idstation/idstation.toml")
DEFAULT_CSCA_DIR = Path("/etc/idstation/csca")
ENV_PREFIX = "IDSTATION_"


MAX_DEPTH = 3  # genuine keys nest at most section → key → [array]; anything deeper is a mistake
MAX_VALUE_CHARS = 4096  # one environment value


def check_broker_url(url: str) -> None:
    """The broker's own rules (``parse_broker_url``) plus a port 1-65535 and nothing but scheme, host, port."""
    try:
        parse_broker_url(url)
        parts = urlsplit(url)
        port = parts.port
    except (PublishError, ValueError):
        raise ValueError("must be mqtt://host:port or mqtts://host:port with a numeric port 1-65535") from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("the port must be 1-65535")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry a user name or password (the box authenticates with its certificate)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be only mqtt[s]://host:port (no path, query or fragment)")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


class ReaderConfig(_Section):
    kind: Literal["pcsc", "sim"] = "pcsc"
    name: str = Field("", description="substring of the PC/SC reader name; empty: the first reader")
    profile: str = Field("auto", description="firmware_cfg/readers/<profile>.toml, a path, or auto (by reader name)")
    poll_s: float = Field(0.5, gt=0, le=10)
    read_timeout_s: float = Field(20.0, gt=0, le=300)
    face: bool = Field(True, description="read the face photo (DG2) and send it sealed: the clerk's page shows it")


class CameraConfig(_Section):
    kind: Literal["picamera2", "v4l2", "sim", "replay", "none"] = "picamera2"
    profile: str = Field("pi-camera-module-3", description="firmware_cfg/cameras/<profile>.toml, or a path")
    device: str = "/dev/video0"
    resolution: tuple[int, int] = (1280, 960)
    replay_dir: Path | None = None
    qr_budget_s: float = Field(3.0, gt=0, le=60, description="how long to look for the QR on each placement")
    qr_memory_s: float = Field(60.0, ge=0, le=600, description="how long a QR seen before placement stays usable")
    idle_scan_s: float = Field(1.0, ge=0, le=60, description="look for a QR between cards this often (0: off)")

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not (160 <= value[0] <= 8192 and 120 <= value[1] <= 8192):
            raise ValueError("width must be 160-8192 and height 120-8192 pixels")
        return value


class BrokerConfig(_Section):
    url: str = Field("", description="mqtts://host:port; empty: binding.json from provisioning")
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    rate_per_s: float = Field(20.0, gt=0, le=10000)
    keepalive_s: int = Field(30, ge=5, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value:
            check_broker_url(value)
        return value


class OutboxConfig(_Section):
    path: Path | None = Field(None, description="empty: <state_dir>/outbox.sqlite")
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    backlog_rate_per_s: float = Field(20.0, gt=0, le=10000)
    receipt_timeout_s: float = Field(
        30.0, ge=1, le=86400, description="a data event the centre has not receipted this long is sent again"
    )


class SimulationConfig(_Section):
    profiles: Path | None = Field(None, description="directory of citizen profiles; empty: the built-in citizens")
    count: int = Field(5, ge=0, le=100000)
    interval_s: float = Field(2.0, ge=0, le=3600)
    hold_s: float = Field(1.5, ge=0, le=600, description="how long each virtual card lies on the reader")
    start_delay_s: float = Field(0.5, ge=0, le=3600)
    scenario: list[str] = Field(default_factory=list, description="per-card faults, cycled (see simulation.py)")


class IndicatorConfig(_Section):
    console: bool = True
    reader: bool = Field(True, description="reader LED/buzzer through the profile's escape commands")
    gpio_led_ok: int | None = Field(None, ge=0, le=27)
    gpio_led_error: int | None = Field(None, ge=0, le=27)
    gpio_buzzer: int | None = Field(None, ge=0, le=27)


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class StatusConfig(_Section):
    interval_s: float = Field(30.0, gt=0, le=3600)


class Config(_Section):
    state_dir: Path = DEFAULT_STATE_DIR
    csca_dir: Path | None = Field(DEFAULT_CSCA_DIR, description="CSCA certificates / master lists")
    trust_test_csca: bool = Field(False, description="also trust the built-in test CSCA (demo and tests only)")
    site: str = Field("", description="empty: from binding.json")
    counter: str = Field("", description="empty: from binding.json")
    reader: ReaderConfig = ReaderConfig()
    camera: CameraConfig = CameraConfig()
    broker: BrokerConfig = BrokerConfig()
    outbox: OutboxConfig = OutboxConfig()
    simulation: SimulationConfig = SimulationConfig()
    indicators: IndicatorConfig = IndicatorConfig()
    logging: LoggingConfig = LoggingConfig()
    status: StatusConfig = StatusConfig()

    @field_validator("site", "counter")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not valid_name(value):
            raise ValueError(f"must be {NAME_RULE}")
        return value

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.state_dir / "outbox.sqlite"

    @property
    def identity_dir(self) -> Path:
        return self.state_dir / "identity"


SECTIONS = {name for name, f in Config.model_fields.items() if isinstance(f.default, BaseModel)}


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One wrong key: ``key`` is dotted (``broker.protocol``), ``reason`` says why."""

    key: str
    reason: str
    source: str = "file"

    def __str__(self) -> str:
        return f"{self.key}: {self.reason} ({self.source})"


class ConfigInvalid(ConfigError):
    """The configuration has wrong keys; ``problems`` names each one."""

    def __init__(self, problems: list[ConfigProblem], path: Path | None = None) -> None:
        self.problems = problems
        where = f" in {path}" if path else ""
        super().__init__(f"{len(problems)} configuration problem(s){where}: " + "; ".join(map(str, problems)))


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn ``IDSTATION_<SECTION>__<KEY>`` variables into a nested dict; also return key → variable name.

    Variables naming no configuration key (``IDSTATION_LOG_LEVEL``, ``IDSTATION_HIL_READER``) are
    left to their own users; ``IDSTATION_<SECTION>__<UNKNOWN>`` is kept so validation names it.
    Variables that contradict each other (``IDSTATION_READER=1`` with ``IDSTATION_READER__KIND``,
    or a key nested below a value) and values nested too deeply are ``ConfigInvalid``.
    """
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var == "IDSTATION_CONFIG":
            continue
        parts = [p.lower() for p in var[len(ENV_PREFIX) :].split("__")]
        if parts[0] not in Config.model_fields or (len(parts) > 1 and parts[0] not in SECTIONS):
            continue
        key = ".".join(parts)
        try:
            value = _env_value(environ[var])
        except ValueError as exc:
            problems.append(ConfigProblem(key, str(exc), f"env {var}"))
            continue
        clash = _place(tree, parts, value)
        if clash is not None:
            other = origin.get(clash, f"{ENV_PREFIX}{clash.replace('.', '__').upper()}")
            reason = f"contradicts {other}: a key cannot be both a value and a section"
            problems.append(ConfigProblem(key, reason, f"env {var}"))
            continue
        origin[key] = var
    if problems:
        raise ConfigInvalid(problems)
    return tree, origin


def _place(tree: dict[str, Any], parts: list[str], value: Any) -> str | None:
    """Put ``value`` at ``parts``; the dotted key it clashes with, or None."""
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return ".".join(parts[: depth + 1])
        node = child
    if parts[-1] in node:
        return ".".join(parts)
    node[parts[-1]] = value
    return None


def _env_value(raw: str) -> Any:
    """A TOML value when the text parses as one (numbers, booleans, arrays), else the string."""
    if len(raw) > MAX_VALUE_CHARS:
        raise ValueError(f"longer than {MAX_VALUE_CHARS} characters")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if _too_deep(value):
        raise ValueError("nested too deeply")
    return value


def _too_deep(value: Any, levels: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests tables or arrays more than ``levels`` deep (bounded recursion)."""
    if not isinstance(value, dict | list):
        return False
    if levels <= 0:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(_too_deep(child, levels - 1) for child in children)


def _depth_problems(data: Mapping[str, Any], origin: Mapping[str, str]) -> list[ConfigProblem]:
    """Keys whose values nest deeper than any genuine key (checked before pydantic sees them)."""
    problems = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            problems += [_problem(f"{key}.{sub}", "nested too deeply", origin) for sub, inner in value.items()
                         if _too_deep(inner, MAX_DEPTH - 1)]  # fmt: skip
        elif _too_deep(value):
            problems.append(_problem(str(key), "nested too deeply", origin))
    return problems


def _problem(key: str, reason: str, origin: Mapping[str, str]) -> ConfigProblem:
    return ConfigProblem(key, reason, f"env {origin[key]}" if key in origin else "file")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one TOML file; ConfigInvalid naming the file for a missing file or a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigInvalid([ConfigProblem("(file)", f"{path} does not exist")], path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([ConfigProblem("(file)", f"cannot read {path}: {type(exc).__name__}")], path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid([ConfigProblem("(file)", f"not valid TOML: {exc}")], path) from None
    except RecursionError:
        raise ConfigInvalid([ConfigProblem("(file)", "not valid TOML: nested too deeply")], path) from None


def validate(data: Mapping[str, Any], origin: Mapping[str, str] | None = None, path: Path | None = None) -> Config:
    """Validate a nested dict; ConfigInvalid lists every wrong key with its reason."""
    deep = _depth_problems(data, origin or {})
    if deep:
        raise ConfigInvalid(deep, path)
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigInvalid(_problems(exc, origin or {}), path) from None


def _problems(exc: ValidationError, origin: Mapping[str, str]) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        # tuple fields report the element index; the key is the field itself
        while loc and loc[-1].isdigit():
            loc.pop()
        key = ".".join(loc) or "(root)"
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append(_problem(key, reason.removeprefix("Value error, "), origin))
    return problems


def resolve_path(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file to read: the argument, else ``IDSTATION_CONFIG``, else the default when it exists."""
    env = os.environ if environ is None else environ
    if path:
        return Path(path)
    if env.get("IDSTATION_CONFIG"):
        return Path(env["IDSTATION_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults ← ``base`` ← the TOML file ← the environment, validated."""
    env = os.environ if environ is None else environ
    file_path = resolve_path(path, env)
    data: dict[str, Any] = dict(base or {})
    if file_path is not None:
        data = _merge(data, read_toml(file_path))
    overrides, origin = env_overrides(env)
    return validate(_merge(data, overrides), origin, file_path)


def check(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """Every problem of the configuration that ``load_config`` would read (empty when valid)."""
    try:
        load_config(path, environ)
    except ConfigInvalid as exc:
        return exc.problems
    return []


def demo_config(state_dir: Path, broker_url: str, protocol: str = "3.1.1", **sim: Any) -> Config:
    """The embedded configuration of ``idstation demo``: simulated reader and camera on loopback."""
    data: dict[str, Any] = {
        "state_dir": str(state_dir),
        "csca_dir": None,
        "trust_test_csca": True,
        "reader": {"kind": "sim", "profile": "generic"},
        "camera": {"kind": "sim", "qr_budget_s": 2.0},
        "broker": {"url": broker_url, "protocol": protocol, "keepalive_s": 5},
        "simulation": sim,
        "indicators": {"console": False, "reader": False},
        "status": {"interval_s": 5.0},
    }
    return validate(data)
