"""The server's packet class: orjson, and the fast "no binary here" check."""

from __future__ import annotations

import socketio
from livechat import LiveChat

from adapters import socketio_json


def test_json_payloads_encode_with_orjson_as_plain_events() -> None:
    packet = socketio_json.Packet(
        socketio.packet.EVENT, data=["newMessage", {"body": "é ✓", "seq": 1, "x": None}]
    )

    assert packet.packet_type == socketio.packet.EVENT
    assert packet.encode() == '2["newMessage",{"body":"é ✓","seq":1,"x":null}]'


def test_payloads_with_bytes_still_become_binary_events() -> None:
    packet = socketio_json.Packet(socketio.packet.EVENT, data=["file", {"part": [1, b"\x00\x01"]}])

    assert packet.packet_type == socketio.packet.BINARY_EVENT
    header, attachment = packet.encode()
    assert header == '51-["file",{"part":[1,{"_placeholder":true,"num":0}]}]'
    assert attachment == b"\x00\x01"


def test_the_app_uses_it_and_leaves_the_shared_packet_class_alone(live: LiveChat) -> None:
    assert live.sio.packet_class is socketio_json.Packet
    # python-socketio clients in the same process keep the stdlib json codec.
    assert socketio.packet.Packet.json is not socketio_json.Packet.json


def test_a_packet_encodes_its_own_payload_when_another_was_checked_in_between() -> None:
    first = socketio_json.Packet(socketio.packet.EVENT, data=["newMessage", {"seq": 1}])
    second = socketio_json.Packet(socketio.packet.EVENT, data=["newMessage", {"seq": 2}])

    assert first.encode() == '2["newMessage",{"seq":1}]'
    assert second.encode() == '2["newMessage",{"seq":2}]'
    # Encoded again (the check's JSON is used once): still its own payload.
    assert second.encode() == '2["newMessage",{"seq":2}]'
