"""Argon2id password hashing (argon2-cffi): the PasswordHasher port.

Hashing is deliberately slow CPU work, so it runs in a worker thread
(argon2-cffi releases the GIL) and never blocks the event loop.
"""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chatcore.ports import PasswordHasher


class Argon2PasswordHasher(PasswordHasher):
    """Argon2id with argon2-cffi's parameters (RFC 9106 low-memory profile by default).

    Pass another :class:`argon2.Parameters` (e.g. ``argon2.profiles.CHEAPEST`` in
    tests) to trade strength for speed; hashes made with other parameters still verify.
    """

    def __init__(self, parameters: argon2.Parameters | None = None) -> None:
        self._hasher = (
            argon2.PasswordHasher.from_parameters(parameters)
            if parameters is not None
            else argon2.PasswordHasher()
        )

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
