"""What the running app resolved at startup, shared by the HTTP routes and socket handlers.

Handlers are registered when the app is built (no I/O then); the Chat they
call is only assembled in the lifespan, once storage is open.
"""

from __future__ import annotations

from attrs import define

from chatcore.chat import Chat
from chatcore.errors import Unavailable


@define
class Runtime:
    chat_instance: Chat | None = None

    @property
    def chat(self) -> Chat:
        if self.chat_instance is None:
            raise Unavailable("the server is starting or stopping")
        return self.chat_instance
