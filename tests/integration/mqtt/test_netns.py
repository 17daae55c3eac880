"""Bad lines, made with a network namespace: a congested line (tbf 256 kbit/s + nftables random loss)
and a full partition for two minutes. The device runs in the namespace, the broker and the centre
outside it on the namespace's veth link. Every durable event arrives; duplicates are recognised.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Collector, wait_for

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(not all(shutil.which(t) for t in ("ip", "tc", "nft")), reason="ip, tc and nft are needed"),
]


def _sh(*argv: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, check=check, timeout=30)


class Line:
    """A namespace ``ns`` linked to the host by a veth pair; the host side is ``host_ip``."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns, self.host_if, self.dev_if = f"ids-{tag}", f"idh{tag}", f"idd{tag}"
        octet = int(tag[:2], 16) % 200 + 20
        self.host_ip, self.dev_ip = f"10.213.{octet}.1", f"10.213.{octet}.2"

    def up(self) -> None:
        _sh("ip", "netns", "add", self.ns)
        _sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.dev_if)
        _sh("ip", "link", "set", self.dev_if, "netns", self.ns)
        _sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _sh("ip", "link", "set", self.host_if, "up")
        _sh("ip", "addr", "add", f"{self.dev_ip}/30", "dev", self.dev_if, ns=self.ns)
        _sh("ip", "link", "set", self.dev_if, "up", ns=self.ns)
        _sh("ip", "link", "set", "lo", "up", ns=self.ns)

    def nft(self, *args: str) -> None:
        _sh("nft", *args, ns=self.ns)

    def slow(self, rate: str = "256kbit", loss_percent: int = 5) -> None:
        for dev, ns in ((self.dev_if, self.ns), (self.host_if, None)):
            _sh(
                "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "4kb", "latency", "500ms", ns=ns
            )
        self.nft("add", "table", "inet", "lossy")
        for chain, hook in (("out", "output"), ("in", "input")):
            self.nft("add", "chain", "inet", "lossy", chain, f"{{ type filter hook {hook} priority 0 ; }}")
            self.nft(
                "add", "rule", "inet", "lossy", chain, "numgen", "random", "mod", "100", "<", str(loss_percent), "drop"
            )

    def cut(self) -> None:
        self.nft("add", "table", "inet", "partition")
        for chain, hook in (("out", "output"), ("in", "input")):
            self.nft("add", "chain", "inet", "partition", chain, f"{{ type filter hook {hook} priority -10 ; }}")
            for field in ("daddr", "saddr"):
                self.nft("add", "rule", "inet", "partition", chain, "ip", field, "!=", "127.0.0.0/8", "drop")

    def heal(self) -> None:
        _sh("nft", "delete", "table", "inet", "partition", ns=self.ns, check=False)

    def down(self) -> None:
        _sh("ip", "link", "del", self.host_if, check=False)
        _sh("ip", "netns", "del", self.ns, check=False)


@pytest.fixture
def line() -> Iterator[Line]:
    link = Line()
    try:
        link.up()
    except (subprocess.CalledProcessError, OSError) as exc:
        link.down()
        pytest.skip(f"cannot make a network namespace here: {exc}")
    yield link
    link.down()


def _device(line: Line, url: str, device, central_key, *, outbox: Path, pace: tuple[int, float, float]):
    """The publisher process inside the namespace; ``pace`` = (events, interval s, drain timeout s)."""
    argv = ["ip", "netns", "exec", line.ns, sys.executable, "-m", "tests.integration.mqtt.publisher_proc", url]
    argv += [device.device_id, device.record.site, device.record.counter, str(device.key_path)]
    argv += [str(central_key.path), str(outbox), *(str(x) for x in pace)]
    env = {**os.environ, "IDSTATION_LOG_LEVEL": "warning"}
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def _identity_ids(central: Collector) -> list[str]:
    return [e.event_id for e in central.events if e.kind == "identity"]


def test_a_congested_lossy_line_delivers_everything(line, broker_factory, registry, central_key, enrol):
    tmp_path = registry.path.parent
    broker = broker_factory(host=line.host_ip)
    device = enrol()
    line.slow("256kbit", loss_percent=5)
    with Collector(broker.url, registry, central_key.path, tmp_path / "state.sqlite") as central:
        proc = _device(line, broker.url, device, central_key, outbox=tmp_path / "ob.sqlite", pace=(60, 0.05, 120))
        out, _ = proc.communicate(timeout=180)
        durable = {x for x in out.split() if len(x) == 36}
        assert "DRAINED" in out
        assert len(durable) == 60
        assert wait_for(lambda: durable <= set(_identity_ids(central)), 30)
    received = _identity_ids(central)
    assert len(received) == len(set(received))


@pytest.mark.slow
def test_a_two_minute_partition_loses_nothing(line, broker_factory, registry, central_key, enrol):
    tmp_path = registry.path.parent
    broker = broker_factory(host=line.host_ip)
    device = enrol()
    with Collector(broker.url, registry, central_key.path, tmp_path / "state.sqlite") as central:
        # 90 events, one every 1.5 s: the first ones go through, then the line is cut for 120 s
        proc = _device(line, broker.url, device, central_key, outbox=tmp_path / "ob.sqlite", pace=(90, 1.5, 150))
        assert wait_for(lambda: len(_identity_ids(central)) >= 3, 30)
        line.cut()
        time.sleep(120)
        during = len(_identity_ids(central))
        line.heal()
        out, _ = proc.communicate(timeout=300)
        durable = {x for x in out.split() if len(x) == 36}
        assert "DRAINED" in out
        assert wait_for(lambda: durable <= set(_identity_ids(central)), 60)
    assert during < 90  # the partition really held events back
    received = _identity_ids(central)
    assert len(received) == len(set(received))
