"""``central listen``'s scale-out options: a RabbitMQ cluster instead of an MQTT broker
(``--amqp URL`` or ``--broker amqp://...``; several nodes: repeat the flag or separate by commas),
``--prefetch N`` (what one listener holds unacknowledged: its memory bound), and
``--metrics HOST:PORT`` (Prometheus ``/metrics`` and ``/ready``; a bare port binds loopback)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from idstation.agent.cli.exitcodes import UsageError

if TYPE_CHECKING:
    from idstation.mqtt.central.chip_check import ChipCheck
    from idstation.mqtt.central.listener import AcceptedEvent, CentralListener
    from idstation.mqtt.central.metrics import ListenerMetrics, MetricsServer

__all__ = ["add_arguments", "amqp_urls", "listener_options", "observed", "start_metrics"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--amqp",
        action="append",
        metavar="URL",
        help="consume the shared quorum queue of a RabbitMQ cluster (amqp://user:pass@host:5672/%%2F); "
        "repeat or comma-separate one URL per node; --broker is then not used",
    )
    p.add_argument(
        "--prefetch",
        type=int,
        default=1000,
        metavar="N",
        help="with --amqp: messages this listener holds unacknowledged (default 1000, as mosquitto's Receive "
        "Maximum; bounds its memory)",
    )
    p.add_argument(
        "--csca",
        metavar="DIR",
        help="the centre's own CSCA trust store: re-run passive authentication on identity events and check "
        "their citizen against DG1/DG13 (rejects passive_auth_failed / chip_data_mismatch)",
    )
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics and /ready here (a bare PORT binds 127.0.0.1)",
    )


def amqp_urls(args: argparse.Namespace) -> list[str]:
    """The AMQP node URLs from ``--amqp`` and an ``amqp://`` ``--broker`` (empty: MQTT)."""
    given = list(args.amqp or [])
    if args.broker and args.broker.startswith(("amqp://", "amqps://")):
        given.append(args.broker)
    urls = [u.strip() for item in given for u in item.split(",") if u.strip()]
    for url in urls:
        if not url.startswith(("amqp://", "amqps://")):
            raise UsageError("--amqp takes amqp:// or amqps:// URLs")
    if urls and not 1 <= args.prefetch <= 65535:
        raise UsageError("--prefetch is 1-65535")
    return urls


def listener_options(args: argparse.Namespace) -> tuple[dict[str, Any], ListenerMetrics | None]:
    """Keyword arguments for CentralListener, and the metrics (None without ``--metrics``)."""
    options: dict[str, Any] = {}
    urls = amqp_urls(args)
    if urls:
        options.update(amqp=urls, prefetch=args.prefetch)
    elif not args.broker:
        raise UsageError("give --broker mqtt://... or --amqp amqp://...")
    metrics = None
    if args.metrics:
        from idstation.mqtt.central.metrics import ListenerMetrics, parse_listen_address

        try:
            parse_listen_address(args.metrics)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        metrics = ListenerMetrics()
        options.update(
            on_reject=metrics.on_reject,
            on_batch=metrics.on_batch,
            on_receipt=metrics.on_receipt,
        )
    if getattr(args, "csca", None):
        options["chip_check"] = chip_check(args.csca, metrics)
    return options, metrics


def chip_check(csca_dir: str, metrics: ListenerMetrics | None) -> ChipCheck:
    """The centre's re-verification of identity events (mqtt.central.chip_check) with ``--csca DIR``."""
    from idstation.mqtt.central.chip_check import ChipCheck, load_csca

    return ChipCheck(load_csca(csca_dir), on_verdict=metrics.on_chip_verdict if metrics is not None else None)


def observed(
    on_event: Callable[[AcceptedEvent], None], metrics: ListenerMetrics | None
) -> Callable[[AcceptedEvent], None]:
    """``on_event`` that also counts the event in ``metrics`` (unchanged without metrics)."""
    if metrics is None:
        return on_event

    def both(event: AcceptedEvent) -> None:
        metrics.on_event(event)
        on_event(event)

    return both


def start_metrics(
    args: argparse.Namespace, listener: CentralListener, metrics: ListenerMetrics | None
) -> MetricsServer | None:
    """Serve the metrics with readiness = the store answers and the broker is connected."""
    if metrics is None:
        return None
    from idstation.mqtt.central.metrics import MetricsServer, parse_listen_address

    def store_ok() -> bool:
        listener.store.ping()
        return not listener.intake.store_down.is_set()

    metrics.track_open_gaps(lambda: len(listener.store.gaps()))
    backlog = getattr(listener.transport, "backlog", None)
    if backlog is not None:
        metrics.track_backlog(backlog)
    metrics.track_waits(listener.intake.waited)
    checks = {"store": store_ok, "broker": lambda: bool(listener.transport.connected)}
    return MetricsServer(metrics, parse_listen_address(args.metrics), checks).start()
