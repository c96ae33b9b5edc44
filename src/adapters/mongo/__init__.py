"""MongoDB adapters: every repository port on pymongo's native async API.

Embedding::

    store = MongoStore("mongodb://localhost:27017/chat")
    storage = await store.open()  # connects, creates indexes
    chat = build_chat(storage=storage, ...)
    ...
    await store.close()

The same code talks to mongod (a replica set for atomic sends, see
:mod:`adapters.mongo.messages`) and to the embedded SecantusDB.
"""

from adapters.mongo.client import MongoTimeouts, create_client
from adapters.mongo.conversations import MongoConversationRepository
from adapters.mongo.errors import StorageFailed
from adapters.mongo.indexes import ensure_indexes
from adapters.mongo.messages import MongoMessageRepository
from adapters.mongo.receipts import MongoReceiptRepository
from adapters.mongo.refresh_tokens import MongoRefreshTokenRepository
from adapters.mongo.server import ServerInfo, ServerProfile, detect_profile
from adapters.mongo.store import MongoStore, mongo_storage
from adapters.mongo.transactions import Transactions
from adapters.mongo.users import MongoUserRepository

__all__ = [
    "MongoConversationRepository",
    "MongoMessageRepository",
    "MongoReceiptRepository",
    "MongoRefreshTokenRepository",
    "MongoStore",
    "MongoTimeouts",
    "MongoUserRepository",
    "ServerInfo",
    "ServerProfile",
    "StorageFailed",
    "Transactions",
    "create_client",
    "detect_profile",
    "ensure_indexes",
    "mongo_storage",
]
