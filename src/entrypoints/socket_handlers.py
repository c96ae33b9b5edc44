"""Socket.IO inbound event handlers (an entrypoint, like the HTTP routes)."""

from __future__ import annotations

import socketio

from entrypoints.runtime import Runtime


def register_socket_handlers(sio: socketio.AsyncServer, runtime: Runtime) -> None:
    """Attach connect/disconnect and every client-to-server event of the contract."""
    # Filled in by the real-time work (issue 6).
    del sio, runtime
