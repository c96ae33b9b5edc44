"""orjson behind the ``json`` interface python-socketio expects, and a packet class using it.

python-socketio calls ``dumps(obj, separators=...)`` and wants ``str`` back, so
``orjson`` cannot be passed as is. :class:`Packet` is python-socketio's packet
with this codec and a fast binary check; give it to the server as
``AsyncServer(serializer=Packet, json=socketio_json)`` so that the codec is set
on this class only, not on the packet class every python-socketio client in the
process shares.
"""

from __future__ import annotations

from typing import Any

import orjson
import socketio

# The payload :meth:`Packet.data_is_binary` last encoded, and its JSON: python-socketio
# checks a packet's payload for binary when it builds the packet and encodes the same
# object right after (``Packet(...).encode()``), so that encoding is reused, once.
_checked: tuple[Any, bytes] | None = None


def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
    """Compact JSON text; extra arguments (``separators``, ...) are ignored."""
    global _checked
    checked = _checked
    if checked is not None and checked[0] is obj:
        _checked = None
        return checked[1].decode()
    return orjson.dumps(obj).decode()


def loads(data: str | bytes, *args: Any, **kwargs: Any) -> Any:
    return orjson.loads(data)


class _Codec:
    dumps = staticmethod(dumps)
    loads = staticmethod(loads)


_base_is_binary = socketio.packet.Packet.data_is_binary


class Packet(socketio.packet.Packet):  # type: ignore[misc]  # socketio ships no types
    """python-socketio's packet, encoding with orjson.

    Before encoding an outgoing packet, python-socketio walks the whole payload in
    Python looking for ``bytes`` (about 8 µs for one message, milliseconds for a
    ``sync`` ack of hundreds). orjson refuses exactly the payloads that contain
    bytes and does it in C, so a successful ``orjson.dumps`` answers "no binary"
    in about 1 µs; only a refused payload takes the original walk. The JSON made by
    that check is the packet's encoding too (see :func:`dumps`).
    """

    json = _Codec

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        global _checked
        try:
            encoded = orjson.dumps(data)
        except TypeError:
            return bool(_base_is_binary(data))
        # Kept for :func:`dumps`: a packet's payload does not change between building and
        # encoding it. Any other object (another packet's, another thread's) does not
        # match, and is encoded afresh.
        _checked = (data, encoded)
        return False
