"""What a client sends: a pymongo command listener for counting round trips.

``create_client(uri, command_listeners=[counter])`` (or ``MongoStore``) makes every
command the client sends pass through :class:`CommandCounter`. The tests pin the
round trips of each operation with it, and the benchmarks report commands per
message and read the filters of the queries they ``explain``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

Document = dict[str, Any]


class CommandCounter(CommandListener):
    """Records the name of every command sent (each is one round trip), and the
    collection and filter of every ``find``."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.finds: list[tuple[str, Document]] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.commands.append(event.command_name)
        if event.command_name == "find":
            command = event.command
            self.finds.append((command["find"], dict(command.get("filter", {}))))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.commands.clear()
        self.finds.clear()

    @property
    def count(self) -> int:
        """Commands sent since the last :meth:`clear`."""
        return len(self.commands)

    def by_name(self) -> Counter[str]:
        return Counter(self.commands)

    def filters(self, collection: str) -> list[Document]:
        """The filters of the ``find`` commands sent to ``collection``, in order."""
        return [query for name, query in self.finds if name == collection]
