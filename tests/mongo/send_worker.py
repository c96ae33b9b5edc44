"""A separate process that sends messages through the Mongo adapter (for multi-process tests).

Usage: ``python send_worker.py <uri> <database> <transactions: 0|1> <json sends>``, where
each send is ``[conversationId, senderId, body, clientMsgId|null]``. All sends start at
once (so they form batches); prints one JSON line: ``[[seq, id, created] | error name]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from adapters.mongo import create_client, mongo_storage
from chatcore.models import NewMessage
from chatcore.system import TimeOrderedIdGenerator


async def main(uri: str, database: str, transactions: bool, sends: list[list[str]]) -> None:
    ids = TimeOrderedIdGenerator()
    client = create_client(uri)
    try:
        storage = mongo_storage(client[database], transactions=transactions)
        news = [
            NewMessage(
                id=ids.new_id(),
                conversation_id=cid,
                sender_id=sender,
                body=body,
                client_msg_id=key,
                created_at=datetime.now(UTC).replace(microsecond=0),
            )
            for cid, sender, body, key in sends
        ]
        results = await asyncio.gather(
            *(storage.messages.append(n) for n in news), return_exceptions=True
        )
        print(
            json.dumps(
                [
                    type(r).__name__
                    if isinstance(r, BaseException)
                    else [r.message.seq, r.message.id, r.created]
                    for r in results
                ]
            )
        )
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "1", json.loads(sys.argv[4])))
