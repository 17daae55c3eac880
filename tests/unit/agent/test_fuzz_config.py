"""Fuzzing configuration loading: random TOML documents and environments give a Config or ConfigInvalid.

Nothing else may escape ``load_config`` (no RecursionError, TypeError, AttributeError from pydantic
or from the environment merge): ``config check`` and ``run`` turn ConfigInvalid into exit 8.
``IDSTATION_FUZZ_EXAMPLES`` scales the example count.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idstation.agent.config import Config, ConfigInvalid, load_config
from idstation.mqtt.topics import valid_name

EXAMPLES = int(os.environ.get("IDSTATION_FUZZ_EXAMPLES", "200"))
SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]  # tmp_path is only overwritten
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW_OK)
SECTIONS = ("reader", "camera", "broker", "outbox", "simulation", "indicators", "logging", "status")
KEYS = ("kind", "name", "url", "site", "counter", "state_dir", "resolution", "scenario", "level", "path", "x")

scalars = st.one_of(
    st.text(max_size=30), st.integers(-(2**64), 2**64), st.floats(allow_nan=False), st.booleans(),
    st.sampled_from(["mqtt://", "mqtts://h:0", "mqtts://h:99999", "a/#", "c\n1", "sim", "pcsc", "+", "#"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=12,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(KEYS + SECTIONS), max_size=5, unique=True)):
        doc[key] = draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=3)) if key in SECTIONS else draw(values)
    return doc


def _accept(load: Any) -> Config | None:
    try:
        cfg = load()
    except ConfigInvalid as exc:
        assert exc.problems
        assert all(p.key and p.reason for p in exc.problems)
        return None
    assert isinstance(cfg, Config)
    for name in (cfg.site, cfg.counter):
        assert name == "" or valid_name(name)
    return cfg


@FUZZ
@given(documents())
def test_random_toml_documents_give_a_config_or_config_invalid(tmp_path: Path, doc: dict[str, Any]) -> None:
    path = tmp_path / "idstation.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    _accept(lambda: load_config(path, environ={}))


@FUZZ
@given(st.text(max_size=300))
def test_random_text_as_a_config_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "idstation.toml"
    path.write_text(text, encoding="utf-8")
    _accept(lambda: load_config(path, environ={}))


env_names = st.lists(st.sampled_from(SECTIONS + KEYS), min_size=1, max_size=3).map(
    lambda parts: "IDSTATION_" + "__".join(p.upper() for p in parts)
)
HOSTILE_ENV = ["1", "[1, 2]", "{a = 1}", "[[[[[1]]]]]", "{a={b={c=1}}}", "true", "sim", "[" * 3000 + "]" * 3000]
env_values = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_ENV))


@FUZZ
@given(st.dictionaries(env_names, env_values, max_size=5))
def test_random_environments_give_a_config_or_config_invalid(environ: dict[str, str]) -> None:
    clean = {k: v.replace("\x00", "") for k, v in environ.items()}
    _accept(lambda: load_config(None, environ=clean))
