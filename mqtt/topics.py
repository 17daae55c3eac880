"""MQTT topics: ``idstation/v1/{site}/{counter}/{kind}``.

``kind`` is one of the event kinds (identity, read_failed, status, heartbeat). The status topic
is retained and carries the last will. The central side subscribes to ``idstation/v1/+/+/+``
(as ``$share/{group}/idstation/v1/+/+/+`` over MQTT 5, so several listeners share the load).
"""

from __future__ import annotations

import re

from idstation.mqtt.errors import EventRejected
from idstation.mqtt.events import KINDS

# One rule for every name that becomes a topic level or a file name: device id, site, counter, group.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

PREFIX = "idstation/v1"
SUBSCRIPTION = f"{PREFIX}/+/+/+"
# What the centre subscribes to: the four event kinds only, so the broker never sends it the
# (retained) receipts it publishes itself — one per counter on every resubscribe — nor enrolment traffic.
EVENT_SUBSCRIPTIONS = tuple(f"{PREFIX}/+/+/{kind}" for kind in KINDS)
# Enrolment request/response topics (provisioning) share the prefix and the depth of event topics.
PROVISION_PREFIX = f"{PREFIX}/provision/"

__all__ = [
    "EVENT_SUBSCRIPTIONS",
    "PREFIX",
    "PROVISION_PREFIX",
    "SUBSCRIPTION",
    "event_subscriptions",
    "is_provisioning_topic",
    "parse_topic",
    "shared_subscription",
    "topic_for",
    "valid_name",
]


def valid_name(value: object) -> bool:
    """A topic level or a listener group: 1-128 of ``A-Z a-z 0-9 . _ -``, not starting with ``. _ -``

    (safe as an MQTT topic level and as a file name). Device ids, sites and counters are held to the
    stricter enrolment rule everywhere they are made or checked (``pairing.valid_name``, 1-64).
    """
    return isinstance(value, str) and bool(_NAME_RE.fullmatch(value))


def topic_for(site: str, counter: str, kind: str) -> str:
    """The topic a device publishes an event of ``kind`` to."""
    if not (valid_name(site) and valid_name(counter)):
        raise TypeError("site and counter must be 1-128 of A-Z a-z 0-9 . _ -")
    if kind not in KINDS:
        raise TypeError(f"unknown event kind {kind!r}")
    return f"{PREFIX}/{site}/{counter}/{kind}"


def is_provisioning_topic(topic: str) -> bool:
    """True for enrolment traffic, which an event listener's wildcard also receives and must ignore."""
    return topic.startswith(PROVISION_PREFIX)


# a whole event topic in one match (the check thread parses one per message); the same rule as
# the step-by-step parse below, which words a refusal
_EVENT_TOPIC = re.compile(
    rf"{re.escape(PREFIX)}/({_NAME_RE.pattern[1:-1]})/({_NAME_RE.pattern[1:-1]})/({'|'.join(KINDS)})"
)


def parse_topic(topic: str) -> tuple[str, str, str]:
    """``(site, counter, kind)`` of an event topic, or :class:`EventRejected` ("bad_topic")."""
    match = _EVENT_TOPIC.fullmatch(topic)
    if match is not None:
        return match[1], match[2], match[3]
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX:
        raise EventRejected("bad_topic", "not an idstation v1 event topic")
    site, counter, kind = parts[2:]
    if not (valid_name(site) and valid_name(counter)) or kind not in KINDS:
        raise EventRejected("bad_topic", "malformed idstation topic")
    return site, counter, kind


def shared_subscription(group: str) -> str:
    """The MQTT 5 shared subscription of a listener group."""
    if not valid_name(group):
        raise TypeError("a group name is 1-128 of A-Z a-z 0-9 . _ -")
    return f"$share/{group}/{SUBSCRIPTION}"


def event_subscriptions(group: str | None = None) -> list[str]:
    """The centre's subscriptions: one per event kind, shared by ``group`` (MQTT 5) when given."""
    if group is None:
        return list(EVENT_SUBSCRIPTIONS)
    if not valid_name(group):
        raise TypeError("a group name is 1-128 of A-Z a-z 0-9 . _ -")
    return [f"$share/{group}/{topic}" for topic in EVENT_SUBSCRIPTIONS]
