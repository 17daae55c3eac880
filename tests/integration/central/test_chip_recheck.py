"""The centre re-verifies the chip (central listen --csca): an identity event whose chip data does
not vouch for the citizen it states is rejected, a genuine one carries the centre's verdict beside
the box's, in the live JSON line and in the store."""

from __future__ import annotations

import copy
import json

import pytest
from idstation.agent.access import candidates_for
from idstation.agent.emrtd.read import ReadPolicy, read_document
from idstation.agent.emrtd.virtual_card.chip import VirtualChip
from idstation.agent.sim.profiles import builtin_profiles, image_for, test_trust
from idstation.agent.wiring import identity_private
from idstation.hal.reader_sim import SimReader
from idstation.mqtt.central.listener import CentralProcessor, event_to_json_line
from idstation.mqtt.central.registry import Registry
from idstation.mqtt.central.store import open_store
from idstation.mqtt.errors import EventRejected
from idstation.mqtt.events import EventBuilder
from idstation.mqtt.seal import Signer
from idstation.mqtt.topics import topic_for

from tests.integration.central.fleet import write_devices
from tests.integration.central.scale_helpers import central_keys

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private_part() -> dict:
    image = image_for("an")
    reader = SimReader()
    reader.insert(VirtualChip(image), atr=image.atr, extended_length=True, max_response=65536)
    can = builtin_profiles()["an"].id_number[-6:]
    result = read_document(reader.wait_for_card(1.0), candidates_for(can=can), ReadPolicy(), test_trust())
    return identity_private("verified", None, result).model_dump(mode="json", exclude_none=True)


@pytest.fixture
def centre(tmp_path):
    """A processor with the CLI's chip check (the test CSCA as the centre's trust store)."""
    from idstation.agent.cli.central_scale import chip_check
    from idstation.agent.sim.profiles import test_csca_pem

    csca = tmp_path / "csca"
    csca.mkdir()
    (csca / "test-csca.pem").write_bytes(test_csca_pem())
    [device] = write_devices(tmp_path / "registry", 1)
    central = central_keys(tmp_path)
    store = open_store(f"sqlite:///{tmp_path}/central.db", migrate=True)
    processor = CentralProcessor(Registry(tmp_path / "registry"), _key(tmp_path), store, chip_check(str(csca), None))
    builder = EventBuilder(device.device_id, device.site, device.counter, Signer(device.key), central.public_key())
    yield processor, builder, topic_for(device.site, device.counter, "identity"), store
    store.close()


def _key(tmp_path):
    from idstation.mqtt.seal import load_central_private_key

    return load_central_private_key(tmp_path / "central_key.pem")


def test_a_genuine_chip_read_is_accepted_with_the_centres_verdict_beside_the_boxs(centre, private_part) -> None:
    processor, builder, topic, store = centre
    event = processor.process(topic, builder.build("identity", 1, private=copy.deepcopy(private_part)).frame)
    line = json.loads(event_to_json_line(event))
    assert line["centre_verification"]["passive"] == "verified"
    assert line["centre_verification"]["data_match"] is True
    assert line["verification"]["passive"] == private_part["verification"]["passive"]  # the box's, kept
    [stored] = store.events_after(0, 10)
    assert stored.header["centre_verification"] == line["centre_verification"]


def test_a_citizen_the_chip_does_not_hold_is_rejected_as_chip_data_mismatch(centre, private_part) -> None:
    processor, builder, topic, store = centre
    forged = copy.deepcopy(private_part)
    forged["citizen"]["id_number"] = "001099000001"
    with pytest.raises(EventRejected) as caught:
        processor.process(topic, builder.build("identity", 1, private=forged).frame)
    assert caught.value.reason == "chip_data_mismatch"
    assert store.events_after(0, 10) == []
