"""Message search on SecantusDB and in memory: 100,000 messages in 500 conversations.

The data set: 500 group conversations of 50 members each, drawn from 1,000 users
(a user is in about 25 of them), and one "heavy" user who is in all 500. Bodies
are 6..18 words from a 5,000-word vocabulary used with Zipf-distributed
frequencies, spread over the last 30 days. SecantusDB runs as a child process and
is filled with ``insert_many`` of the documents the adapter itself writes
(``message_to_document``: search keys included); memory through ``append``.

Each query kind runs ``--search-queries`` times through :class:`SearchService`
(validation, membership, the port), with a different searcher each time, one
after another; p50/p95/max in milliseconds, and on SecantusDB the database
process's CPU time per query ("db ms"). With ``--search-against REV`` the same
queries also run through the search adapter of git revision ``REV``
(``src/adapters/mongo/search.py`` as it was there, on this tree's other modules),
kind by kind in turns with this one's, on the same database: a side-by-side figure
on a machine whose load moves. The plans of the SecantusDB queries are read with
``explain`` and printed. A scenario of ``make bench`` (``--scenarios search``), not
a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
from pymongo import ASCENDING, DESCENDING, IndexModel

from adapters.mongo import MongoStore, MongoTimeouts, ensure_indexes, mongo_storage
from adapters.mongo.commands import CommandCounter
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    OLD_SEARCH_KEYS,
    SEARCH_KEYS,
    Document,
    conversation_to_document,
    message_to_document,
)
from bench import report
from bench.procs import Children, CpuMeter, free_port, group_cpu_seconds, wait_quiet, wait_tcp
from chatcore.chat import Storage
from chatcore.models import Conversation, ConversationType, Message, NewMessage
from chatcore.ports import MessageSearch
from chatcore.search import index_words, words
from chatcore.services.search import SearchService
from chatcore.system import SystemClock
from chatcore.testing import in_memory_storage

USERS = 1_000
CONVERSATIONS_N = 500
MEMBERS = 50
VOCABULARY = 5_000
ZIPF = 1.07
SPAN = timedelta(days=30)
HEAVY = "u-heavy"
SEED = 18
FILL_BATCH = 200
# The indexes only search uses (the write cost is measured with and without them).
SEARCH_INDEXES = ("searchWords", "createdAt", "conversationId_createdAt")
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]


@dataclass(frozen=True)
class Query:
    """One kind of query: who asks (a function of the iteration), what, where."""

    kind: str
    q: str
    who: Callable[[int], str]
    conversation: Callable[[int], str | None] = lambda _: None
    second_page: bool = False


@dataclass
class DataSet:
    conversations: list[Conversation]
    messages: list[Message]
    vocabulary: list[str]
    by_user: dict[str, list[str]]  # user -> conversation ids
    counts: Counter[str]  # word -> messages holding it

    def holders(self, word: str) -> list[Message]:
        return [m for m in self.messages if word in words(m.body)]


def _vocabulary(rng: random.Random) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < VOCABULARY:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 5)))
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def build_data(n_messages: int) -> DataSet:
    """The same data set on every run (seeded)."""
    rng = random.Random(SEED)
    vocabulary = _vocabulary(rng)
    weights = [1 / (rank**ZIPF) for rank in range(1, VOCABULARY + 1)]
    users = [f"u-{i:04d}" for i in range(USERS)]
    end = SystemClock().now()
    start = end - SPAN
    conversations = []
    by_user: dict[str, list[str]] = {HEAVY: []}
    for i in range(CONVERSATIONS_N):
        members = (HEAVY, *rng.sample(users, MEMBERS - 1))
        conversation = Conversation(
            id=f"c-{i:04d}",
            type=ConversationType.GROUP,
            name=f"room {i}",
            member_ids=members,
            created_by=members[1],
            created_at=start,
        )
        conversations.append(conversation)
        for member in members:
            by_user.setdefault(member, []).append(conversation.id)
    seqs = [0] * CONVERSATIONS_N
    last: dict[int, Message] = {}
    messages = []
    counts: Counter[str] = Counter()
    step = SPAN / n_messages
    drawn = iter(rng.choices(vocabulary, weights=weights, k=n_messages * 18))
    for i in range(n_messages):
        c = rng.randrange(CONVERSATIONS_N)
        seqs[c] += 1
        body_words = [next(drawn) for _ in range(rng.randint(6, 18))]
        body_words[0] = body_words[0].capitalize()
        counts.update({w.lower() for w in body_words})
        conversation = conversations[c]
        last[c] = Message(
            id=f"m-{i:07d}",
            conversation_id=conversation.id,
            seq=seqs[c],
            sender_id=rng.choice(conversation.member_ids[1:]),
            body=" ".join(body_words) + rng.choice([".", "!", "?", ""]),
            client_msg_id=None,
            created_at=start + step * (i + 1),
        )
        messages.append(last[c])
    for c, conversation in enumerate(conversations):
        newest = last.get(c)
        conversations[c] = attrs.evolve(
            conversation,
            last_seq=seqs[c],
            last_message=newest,
            last_activity_at=newest.created_at if newest else start,
        )
    return DataSet(conversations, messages, vocabulary, by_user, counts)


def queries(data: DataSet) -> list[Query]:
    """The query kinds of the issue: rare word, common word (a 20-result page and the
    next), a two-word prefix, one conversation vs all; and the heavy user, and a word
    nobody wrote (every window read, nothing found)."""
    common = data.vocabulary[0]
    rare = next(w for w in reversed(data.vocabulary) if 5 <= data.counts[w] <= 15)
    rare_holders = data.holders(rare)
    rare_rooms = sorted({m.conversation_id for m in rare_holders})
    rooms = {c.id: c for c in data.conversations}
    rare_readers = sorted({u for r in rare_rooms for u in rooms[r].member_ids if u != HEAVY})
    typical = sorted(u for u in data.by_user if u != HEAVY)
    two = f"{data.vocabulary[4][:3]} {data.vocabulary[39][:3]}"

    def anyone(i: int) -> str:
        return typical[(i * 7919) % len(typical)]

    def rare_reader(i: int) -> str:
        return rare_readers[i % len(rare_readers)]

    def own_room(i: int) -> str:
        return data.by_user[anyone(i)][i % len(data.by_user[anyone(i)])]

    def rare_room(i: int) -> str:
        user = rare_reader(i)
        return next(r for r in rare_rooms if user in rooms[r].member_ids)

    return [
        Query("rare word, all conversations", rare, rare_reader),
        Query("common word, all conversations", common, anyone),
        Query("common word, all, 2nd page", common, anyone, second_page=True),
        Query("two-word prefix, all conversations", two, anyone),
        Query("rare word, one conversation", rare, rare_reader, rare_room),
        Query("common word, one conversation", common, anyone, own_room),
        Query("rare word, member of all 500", rare, lambda _: HEAVY),
        Query("common word, member of all 500", common, lambda _: HEAVY),
        Query("word nobody wrote, all conversations", "zzqx", anyone),
    ]


def _served_by(query: Document) -> Document:
    """The part of ``query`` SecantusDB plans: with two ranges, its first clause alone
    (the lookup serves the filter from that clause's index and checks the rest per
    document; its explain does not model that and reports COLLSCAN for the whole)."""
    if sum(isinstance(v, dict) for v in query.values()) > 1:
        return dict([next(iter(query.items()))])
    return query


def _plan_summary(explained: Document) -> str:
    plan = explained.get("queryPlanner", explained)["winningPlan"]
    stages = []
    while isinstance(plan, dict):
        stage = plan.get("stage", "?")
        if "indexName" in plan:
            stage += f"({plan['indexName']})"
        stages.append(stage)
        plan = plan.get("inputStage")
    return " <- ".join(stages)


async def measure(
    service: SearchService,
    kinds: list[Query],
    repeat: int,
    meter: CpuMeter,
    db_pid: int | None = None,
) -> list[dict[str, Any]]:
    """Each kind ``repeat`` times; with ``db_pid``, the database's CPU time of the
    measured queries too (not of a 2nd page's first page)."""
    rows = []
    for query in kinds:
        times, found, db_seconds = [], 0, 0.0
        meter.start()
        cpu0, wall0 = time.process_time(), time.monotonic()
        for i in range(repeat):
            user, conversation_id = query.who(i), query.conversation(i)
            cursor = None
            if query.second_page:
                first = await service.messages(user, query.q, conversation_id=conversation_id)
                cursor = first.next_cursor
            db_before = group_cpu_seconds(db_pid) if db_pid is not None else 0.0
            started = time.perf_counter()
            page = await service.messages(
                user, query.q, conversation_id=conversation_id, cursor=cursor
            )
            times.append((time.perf_counter() - started) * 1000)
            if db_pid is not None:
                db_seconds += group_cpu_seconds(db_pid) - db_before
            found += len(page.items)
        cpu = meter.stop()
        # This process's CPU is not "others'": take it out of that figure.
        own = 100 * (time.process_time() - cpu0) / max(time.monotonic() - wall0, 1e-9)
        cpu = {**cpu, "bench": round(own, 1), "other": round(max(0.0, cpu["other"] - own), 1)}
        times.sort()
        rows.append(
            {
                "kind": query.kind,
                "q": query.q,
                "n": repeat,
                "results": round(found / repeat, 1),
                "p50": round(statistics.median(times), 1),
                "p95": round(times[max(0, round(0.95 * len(times)) - 1)], 1),
                "max": round(times[-1], 1),
                "cpu": cpu,
                **({"dbMs": round(1000 * db_seconds / repeat, 1)} if db_pid is not None else {}),
            }
        )
    return rows


def adapter_at(revision: str) -> Callable[..., MessageSearch]:
    """The ``MongoMessageSearch`` of ``src/adapters/mongo/search.py`` at git
    ``revision``, imported as a module of its own next to this tree's modules."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{revision}:src/adapters/mongo/search.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = f"bench_search_at_{''.join(c if c.isalnum() else '_' for c in revision)}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{revision}:src/adapters/mongo/search.py", "exec"), module.__dict__)
    sys.modules[name] = module
    return _search_class(module)


def _search_class(module: ModuleType) -> Callable[..., MessageSearch]:
    found: Callable[..., MessageSearch] = module.MongoMessageSearch
    return found


async def _fill_memory(data: DataSet) -> Storage:
    storage = in_memory_storage()
    for conversation in data.conversations:
        empty = attrs.evolve(conversation, last_seq=0, last_message=None, last_activity_at=None)
        await storage.conversations.create(empty)
    for m in data.messages:
        await storage.messages.append(
            NewMessage(
                id=m.id,
                conversation_id=m.conversation_id,
                sender_id=m.sender_id,
                body=m.body,
                client_msg_id=None,
                created_at=m.created_at,
            )
        )
    return storage


async def search(args: argparse.Namespace, children: Children, work: Path) -> dict[str, Any]:
    """The scenario: same data and queries on memory and on SecantusDB."""
    started = time.monotonic()
    data = build_data(args.search_messages)
    kinds = queries(data)
    keys_per_message = sum(len(index_words(m.body)) for m in data.messages) / len(data.messages)
    _progress(f"data set of {len(data.messages)} messages built", started)
    result: dict[str, Any] = {
        "scenario": "search",
        "messages": len(data.messages),
        "conversations": CONVERSATIONS_N,
        "keysPerMessage": round(keys_per_message, 1),
        "firstReleaseKeys": round(
            sum(len(first_release_keys(m.body)) for m in data.messages) / len(data.messages), 1
        ),
        "words": {k.kind: k.q for k in kinds},
        "commonWordShare": round(data.counts[data.vocabulary[0]] / len(data.messages), 3),
        "backends": {},
    }

    started = time.monotonic()
    memory = await _fill_memory(data)
    _progress("memory filled", started)
    service = SearchService(memory.search, memory.conversations)
    await service.messages(HEAVY, "zzqx")  # normalises every body once (the adapter's cache)
    await wait_quiet(within=args.quiet)
    result["backends"]["memory"] = await measure(service, kinds, args.search_queries, CpuMeter({}))

    port = free_port()
    db_dir = work / "search-secantus"
    executable = Path(sys.executable).with_name("secantusd-py")
    db = await children.start(
        "search-secantus",
        [
            *(str(executable), "--host", "127.0.0.1", "--port", str(port)),
            *("--storage-path", str(db_dir), "--log-level", "WARNING"),
            *(("--cache-size", args.search_cache) if args.search_cache else ()),
        ],
    )
    await wait_tcp(db, port, 30)
    filters = CommandCounter()
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    # Long timeouts: a batch of inserts writes ~150 index entries per message.
    timeouts = MongoTimeouts(socket_ms=300_000)
    async with MongoStore(
        uri, database="bench", command_listeners=[filters], timeouts=timeouts
    ) as store:
        started = time.monotonic()
        database = store.database
        await database[CONVERSATIONS].insert_many(
            [conversation_to_document(c) for c in data.conversations]
        )
        for first in range(0, len(data.messages), FILL_BATCH):
            batch = data.messages[first : first + FILL_BATCH]
            await database[MESSAGES].insert_many([message_to_document(m) for m in batch])
        result["secantusFillSeconds"] = round(time.monotonic() - started, 1)
        _progress(f"SecantusDB filled (insert_many of {FILL_BATCH})", started)
        service = SearchService(store.storage.search, store.storage.conversations)
        services = {"secantus": service}
        if args.search_against:
            adapter = adapter_at(args.search_against)(database, SystemClock())
            against = SearchService(adapter, store.storage.conversations)
            services[f"secantus@{args.search_against}"] = against
        meter = CpuMeter({"db": db.pid})
        await wait_quiet(within=args.quiet)
        measured: dict[str, list[dict[str, Any]]] = {name: [] for name in services}
        for query in kinds:
            # Kind by kind in turns: both adapters see the same load, near enough.
            for name, each in services.items():
                rows = await measure(each, [query], args.search_queries, meter, db.pid)
                filters.clear()
                await each.messages(query.who(0), query.q, conversation_id=query.conversation(0))
                rows[0]["windows"] = len(filters.filters(MESSAGES))
                explained = await database.command(
                    {
                        "explain": {
                            "find": MESSAGES,
                            "filter": _served_by(filters.filters(MESSAGES)[0]),
                        }
                    }
                )
                rows[0]["plan"] = _plan_summary(explained)
                measured[name] += rows
        result["backends"].update(measured)
        started = time.monotonic()
        result["writes"] = await write_cost(store, data, args.search_writes, db.pid)
        _progress("write cost with and without the search indexes", started)
    await children.stop(db)
    return result


# The first search release's form, for the side-by-side write cost: every 1..8-character
# word prefix in ``searchKeys``, held by two indexes.
_FIRST_RELEASE_INDEXES = [
    IndexModel([(OLD_SEARCH_KEYS, ASCENDING), ("createdAt", DESCENDING)], name="search"),
    IndexModel(
        [("conversationId", ASCENDING), (OLD_SEARCH_KEYS, ASCENDING), ("createdAt", DESCENDING)],
        name="search_conversation",
    ),
]
_WRITE_FORMS = ("words (this release)", "no search field or index", "prefixes (first release)")


def first_release_keys(body: str) -> list[str]:
    """Every distinct 1..8-character prefix of every word (the first release's keys)."""
    return sorted({w[:n] for w in set(words(body)) for n in range(1, min(len(w), 8) + 1)})


def _stored_as(form: str, doc: Document) -> Document:
    if form == _WRITE_FORMS[0]:
        return doc
    bare = {k: v for k, v in doc.items() if k != SEARCH_KEYS}
    if form == _WRITE_FORMS[2]:
        bare[OLD_SEARCH_KEYS] = first_release_keys(doc["body"])
    return bare


async def write_cost(store: MongoStore, data: DataSet, n: int, db_pid: int) -> list[dict[str, Any]]:
    """What the search fields cost a write, side by side on one server, in turns (this
    release, none, the first release, then again): ``insert_many`` of 50 documents of
    the data set's bodies in each form, the database's CPU per document; and for this
    release and none, sends one at a time (``append``: the adapter's transaction)."""
    db = store.database.client["bench_writes"]
    await ensure_indexes(db)
    storage = mongo_storage(db)
    rooms = data.conversations[:10]
    await db[CONVERSATIONS].insert_many(
        [conversation_to_document(attrs.evolve(c, last_seq=0, last_message=None)) for c in rooms]
    )
    bodies = itertools.cycle(m.body for m in data.messages[:5000])
    ids = (f"w-{i:08d}" for i in itertools.count())
    seqs = itertools.count(1_000_000)
    rows = []
    for form in (*_WRITE_FORMS, *_WRITE_FORMS):
        existing = await db[MESSAGES].index_information()
        for name in (*SEARCH_INDEXES, "search", "search_conversation"):
            if name in existing:
                await db[MESSAGES].drop_index(name)
        if form == _WRITE_FORMS[0]:
            await ensure_indexes(db)
        elif form == _WRITE_FORMS[2]:
            await db[MESSAGES].create_indexes(_FIRST_RELEASE_INDEXES)
        await wait_quiet(within=3.0)
        sends: float | None = None
        send_cpu: dict[str, float] = {}
        if form != _WRITE_FORMS[2]:
            meter = CpuMeter({"db": db_pid})
            meter.start()
            started = time.perf_counter()
            for i in range(n):
                room = rooms[i % len(rooms)]
                # Without the indexes the words are still stored, just not indexed.
                await storage.messages.append(
                    NewMessage(
                        id=next(ids),
                        conversation_id=room.id,
                        sender_id=room.member_ids[1],
                        body=next(bodies),
                        client_msg_id=None,
                        created_at=SystemClock().now(),
                    )
                )
            sends = n / (time.perf_counter() - started)
            send_cpu = meter.stop()
        batches = max(1, n // 50)
        meter = CpuMeter({"db": db_pid})
        meter.start()
        started = time.perf_counter()
        for _ in range(batches):
            docs = [
                _stored_as(
                    form,
                    message_to_document(
                        Message(
                            id=next(ids),
                            conversation_id="c-bulk",
                            seq=next(seqs),
                            sender_id="u-bulk",
                            body=next(bodies),
                            client_msg_id=None,
                            created_at=SystemClock().now(),
                        )
                    ),
                )
                for _ in range(50)
            ]
            await db[MESSAGES].insert_many(docs)
        elapsed = time.perf_counter() - started
        bulk_cpu = meter.stop()
        rows.append(
            {
                "form": form,
                "sendsPerSec": None if sends is None else round(sends, 1),
                "sendDbUs": None if sends is None else round(send_cpu["db"] / 100 / sends * 1e6),
                "bulkDocsPerSec": round(50 * batches / elapsed, 1),
                "bulkDbUs": round(bulk_cpu["db"] / 100 * elapsed / (50 * batches) * 1e6),
                "cpu": bulk_cpu,
            }
        )
    await store.database.client.drop_database("bench_writes")
    return rows


def _progress(what: str, started: float) -> None:
    print(f"  .. {what} ({time.monotonic() - started:.1f} s)", flush=True)


def table(result: dict[str, Any]) -> str:
    headers = [
        "backend",
        "query",
        "q",
        "results",
        "p50 ms",
        "p95 ms",
        "max ms",
        "db ms",
        "windows",
        "other%",
    ]
    rows = []
    for backend, measured in result["backends"].items():
        for row in measured:
            rows.append(
                [
                    backend,
                    row["kind"],
                    row["q"],
                    row["results"],
                    row["p50"],
                    row["p95"],
                    row["max"],
                    row.get("dbMs", ""),
                    row.get("windows", ""),
                    row["cpu"].get("other", ""),
                ]
            )
    plans = [f"  {row['kind']}: {row['plan']}" for row in result["backends"].get("secantus", [])]
    writes = report.table(
        [
            "stored form",
            "append: sends/s",
            "db us/send",
            "insert_many of 50: docs/s",
            "db us/doc",
            "other%",
        ],
        [
            [
                w["form"],
                "-" if w["sendsPerSec"] is None else w["sendsPerSec"],
                "-" if w["sendDbUs"] is None else w["sendDbUs"],
                w["bulkDocsPerSec"],
                w["bulkDbUs"],
                w["cpu"].get("other", ""),
            ]
            for w in result.get("writes", [])
        ],
    )
    return "\n".join(
        [
            report.table(headers, rows),
            "plans on SecantusDB (first window):",
            *plans,
            f"write cost (indexed words per message: {result['keysPerMessage']}, first"
            f" release's prefixes: {result.get('firstReleaseKeys', '?')}):",
            writes,
        ]
    )


def targets(result: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    rows = {r["kind"]: r for r in result["backends"].get("secantus", [])}
    checks: list[tuple[str, str, bool | None]] = []
    rare = rows.get("rare word, all conversations")
    if rare:
        checks.append(
            ("search p95 <= 50 ms, rare word (SecantusDB)", f"{rare['p95']} ms", rare["p95"] <= 50)
        )
    common = rows.get("common word, all conversations")
    if common:
        checks.append(
            (
                "search p95 <= 150 ms, 20-result page of a common word (SecantusDB)",
                f"{common['p95']} ms",
                common["p95"] <= 150,
            )
        )
    return checks
