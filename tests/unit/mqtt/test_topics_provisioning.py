"""Enrolment traffic shares the event topics' depth; the listener tells them apart."""

from __future__ import annotations

import pytest
from idstation.mqtt.errors import EventRejected
from idstation.mqtt.topics import is_provisioning_topic, parse_topic, topic_for


def test_enrolment_topics_are_recognised_and_event_topics_are_not() -> None:
    assert is_provisioning_topic("idstation/v1/provision/ids-0123456789abcdef/request")
    assert not is_provisioning_topic(topic_for("hn-bd", "c01", "identity"))
    with pytest.raises(EventRejected):
        parse_topic("idstation/v1/provision/ids-0123456789abcdef/request")
