"""The floor of SecantusDB's CPU per stored message: what each part of a send batch costs.

Run: ``python -m bench.db_cost --floor [--batches 60] [--rounds 3]`` (or ``python -m
bench.db_floor``) with the tree to measure on ``PYTHONPATH``. It starts SecantusDB with
durable commits (``--sync-on-commit``) as a child process and, with one synchronous
client (no concurrency: the figures are CPU per unit of work, read from the database
process's ``/proc/<pid>/stat`` around each run), measures:

- **messages, ``_id`` only**: batches of :data:`BATCH` stored-message documents (as
  the adapter writes them: 2-word bodies with a clientMsgId) inserted by one
  ``insert_many`` in a transaction, committed: database CPU per message, commit
  included. This is the floor of a stored message on SecantusDB 0.7;
- **+ one index**: the same into a fresh collection with ``_id`` and one index of the
  messages collection (:data:`adapters.mongo.indexes.INDEXES`): each index's
  marginal CPU per message (the figure minus the ``_id``-only one);
- **all message indexes**: every index of the messages collection at once;
- **the conversation write**: one transaction per batch that writes 1 or 16
  conversation documents (the ``conversations`` collection's indexes, with and
  without the ``directKey_unique`` index of before issue 14's fourth pass), as an
  ``update`` of the send batch's fields, a ``replace`` of the whole documents, or a
  ``delete_many`` + ``insert_many`` of them: CPU per transaction minus the commit floor;
- **the commit floor**: a transaction with one ``find`` by ``_id`` and its commit;
- **a history page**: a range of :data:`PAGE` seqs of one conversation (every
  message index), sorted by the database or not.

The medians of ``--rounds`` runs are printed, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.operations import IndexModel, ReplaceOne, UpdateOne

from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    conversation_to_document,
    new_message,
    stored_message_document,
)
from adapters.mongo.indexes import INDEXES
from bench.mongo_store import secantus_server
from bench.procs import child_pid, cpu_seconds
from chatcore.testing import factories as make

BATCH = 16  # sends per batch: what group commit forms at ~50 concurrent senders
PAGE = 50  # a history page
BODY = "hello world"  # the harness's bodies are two words
Doc = dict[str, Any]
# The conversations' unique index before issue 14's fourth pass (directKeys since).
OLD_DIRECT = "directKey_unique"
OLD_DIRECT_MODEL = IndexModel([("directKey", 1)], name=OLD_DIRECT, unique=True, sparse=True)


def _messages(conversation_id: str, first_seq: int, n: int) -> list[Doc]:
    """``n`` stored-message documents of ``conversation_id`` from ``first_seq`` on."""
    docs = []
    for seq in range(first_seq, first_seq + n):
        new = make.message(conversation_id, "alice", BODY, f"k{seq}", seconds=seq)
        docs.append(stored_message_document(new_message(new, seq)))
    return docs


def _conversations(n: int) -> list[Doc]:
    return [
        conversation_to_document(make.direct(make.new_id("u"), make.new_id("v"))) for _ in range(n)
    ]


class Floor:
    """The measurements, on one database (each in collections of its own)."""

    def __init__(self, client: MongoClient[Doc], pid: int, batches: int, prefill: int) -> None:
        self._client = client
        self._db: Database[Doc] = client["floor"]
        self._pid = pid
        self._batches = batches
        self._prefill = prefill
        self._runs = 0

    def _fresh(
        self, base: str, indexes: list[IndexModel], filler: Callable[[int], list[Doc]]
    ) -> Collection[Doc]:
        """A new collection holding ``filler``'s documents, then given ``indexes``."""
        self._runs += 1
        collection = self._db[f"{base}_{self._runs}"]
        for start in range(0, self._prefill, 1000):
            collection.insert_many(filler(min(1000, self._prefill - start)))
        if indexes:
            collection.create_indexes(indexes)
        return collection

    def _per_unit(self, units: int, work: Callable[[], None]) -> float:
        """Database CPU microseconds per unit of ``work`` (which does ``units``)."""
        before = cpu_seconds(self._pid)
        work()
        return (cpu_seconds(self._pid) - before) / units * 1e6

    def _transactions(self, n: int, step: Callable[[Any, int], None]) -> None:
        with self._client.start_session() as session:
            for i in range(n):
                with session.start_transaction():
                    step(session, i)

    def messages(self, indexes: list[IndexModel]) -> float:
        """CPU per message of batches of BATCH inserts in a durable transaction."""
        # Other conversations' messages already stored (index writes may grow with them).
        collection = self._fresh("m", indexes, lambda n: _messages(make.new_id("o"), 1, n))
        conversation = make.new_id("c")
        batches = [_messages(conversation, 1 + b * BATCH, BATCH) for b in range(self._batches)]

        def insert(session: Any, i: int) -> None:
            collection.insert_many(batches[i], session=session)

        return self._per_unit(
            self._batches * BATCH, lambda: self._transactions(self._batches, insert)
        )

    def commit(self) -> float:
        """CPU per transaction of one find by _id and its commit."""
        self._runs += 1
        collection = self._db[f"f_{self._runs}"]
        collection.insert_one({"_id": "x"})

        def find(session: Any, _: int) -> None:
            collection.find_one({"_id": "x"}, session=session)

        return self._per_unit(self._batches, lambda: self._transactions(self._batches, find))

    def conversation(self, indexes: list[IndexModel], mode: str, per_batch: int) -> float:
        """CPU per transaction that writes ``per_batch`` of 200 conversations (commit
        included): ``update`` (one bulk update of the batch's fields), ``replace``
        (one bulk replace of the whole documents) or ``rewrite`` (``delete_many`` +
        ``insert_many`` of them)."""
        collection = self._fresh("c", indexes, _conversations)
        docs = _conversations(200)
        collection.insert_many(docs)
        last = _messages("c", 1, 1)[0]

        def write(session: Any, i: int) -> None:
            mine = [docs[(i * per_batch + k) % len(docs)] for k in range(per_batch)]
            changes = []
            for doc in mine:
                change = {
                    "lastSeq": doc.get("lastSeq", 0) + 1,
                    "lastActivityAt": datetime.now(UTC),
                    "lastMessage": last,
                }
                doc |= change
                changes.append(change)
            if mode == "update":
                collection.bulk_write(
                    [
                        UpdateOne({"_id": d["_id"]}, {"$set": c})
                        for d, c in zip(mine, changes, strict=True)
                    ],
                    session=session,
                )
            elif mode == "replace":
                collection.bulk_write(
                    [ReplaceOne({"_id": d["_id"]}, d) for d in mine], session=session
                )
            else:
                ids = [d["_id"] for d in mine]
                collection.delete_many({"_id": {"$in": ids}}, session=session)
                collection.insert_many(mine, session=session)

        return self._per_unit(self._batches, lambda: self._transactions(self._batches, write))

    def page(self, *, sort: bool) -> float:
        """CPU per history page of PAGE messages (a seq range), sorted by the database
        or not (the adapter sorts in Python)."""
        collection = self._fresh(
            "p", INDEXES[MESSAGES], lambda n: _messages(make.new_id("o"), 1, n)
        )
        conversation = make.new_id("c")
        collection.insert_many(_messages(conversation, 1, 10 * PAGE))

        def pages() -> None:
            for i in range(self._batches):
                first = 1 + (i * 7) % (9 * PAGE)
                query = {
                    "conversationId": conversation,
                    "seq": {"$gte": first, "$lt": first + PAGE},
                }
                cursor = collection.find(query)
                if sort:
                    cursor = cursor.sort("seq", ASCENDING)
                found = list(cursor)
                assert len(found) == PAGE

        return self._per_unit(self._batches, pages)


def _median(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def rows(floor: Floor, runs: int) -> Iterator[tuple[str, float, str]]:
    """(label, median database CPU in microseconds, unit) per measurement."""
    base = _median(runs, lambda: floor.messages([]))
    yield "messages, _id index only", base, "us/msg"
    for index in INDEXES[MESSAGES]:
        name = index.document["name"]
        with_it = _median(runs, lambda index=index: floor.messages([index]))  # type: ignore[misc]
        yield f"  + {name}", with_it - base, "us/msg (marginal)"
    every = _median(runs, lambda: floor.messages(INDEXES[MESSAGES]))
    yield "messages, all indexes", every, "us/msg"
    commit = _median(runs, floor.commit)
    yield "commit floor (find by _id + commit)", commit, "us/txn"
    for sort in (True, False):
        cost = _median(runs, lambda sort=sort: floor.page(sort=sort))  # type: ignore[misc]
        where = "by the database" if sort else "in Python (unsorted find)"
        yield f"history page of {PAGE}, sorted {where}", cost, "us/page"
    without_direct = [i for i in INDEXES[CONVERSATIONS] if i.document["name"] != OLD_DIRECT]
    with_direct = [*without_direct, OLD_DIRECT_MODEL]
    for label, indexes in (
        ("with directKey_unique", with_direct),
        ("without it (today)", without_direct),
    ):
        for per_batch, modes in (
            (1, ("update", "replace")),
            (16, ("update", "replace", "rewrite")),
        ):
            for mode in modes:
                cost = _median(
                    runs,
                    lambda i=indexes, m=mode, n=per_batch: floor.conversation(i, m, n),  # type: ignore[misc]
                )
                yield (
                    f"{per_batch} conversation(s) by {mode}, {label}",
                    cost - commit,
                    "us/batch (commit excluded)",
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=60, help="transactions per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure (median kept)")
    parser.add_argument(
        "--prefill",
        type=int,
        default=5000,
        help="documents already in each collection (other conversations' messages)",
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as root,
        secantus_server(Path(root) / "db", "--sync-on-commit") as uri,
        MongoClient[Doc](uri) as client,
    ):
        pid = child_pid("secantusd")
        print(f"load average {os.getloadavg()[0]:.1f}, {time.strftime('%H:%M:%S')} local time")
        print(
            f"batches of {BATCH}, {args.batches} transactions per figure, median of"
            f" {args.rounds}, {args.prefill} documents in each collection before"
        )
        for label, value, unit in rows(Floor(client, pid, args.batches, args.prefill), args.rounds):
            print(f"  {label:<52} {value:>8.0f} {unit}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
