"""JWT access tokens (PyJWT): the AccessTokens port.

Tokens are short-lived and stateless: HMAC-signed with one server secret,
claims ``sub`` (user id), ``iat``, ``exp``, ``jti`` and ``typ: "access"``. The
algorithm is pinned on decode, so ``alg: none`` or a token signed with another
algorithm is refused like a tampered one.

Verified tokens are remembered (:class:`VerifiedTokens`): every request of a
client carries the same token, and checking its signature and decoding its
claims was 12-19 % of the server's CPU per HTTP request. A remembered token is
still refused from its expiry on; nothing revokes an access token before it
expires, so remembering one accepts nothing that verifying again would refuse.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import jwt

from chatcore.errors import Unauthorized
from chatcore.models import IssuedAccessToken
from chatcore.ports import AccessTokens, Clock
from chatcore.system import SystemClock

HmacAlgorithm = Literal["HS256", "HS384", "HS512"]

ACCESS_TOKEN_TYPE: Final = "access"
# RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
MIN_SECRET_BYTES: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
_REQUIRED_CLAIMS: Final = ["exp", "iat", "sub", "jti"]
# Verified tokens kept: about one per active client (a token is a few hundred
# bytes, so this bounds the memory to a few MiB).
VERIFIED_TOKENS_KEPT: Final = 10_000


class VerifiedTokens:
    """The last ``size`` verified tokens (least recently used dropped first), each
    with its subject and expiry."""

    def __init__(self, size: int = VERIFIED_TOKENS_KEPT) -> None:
        self._size = size
        self._tokens: OrderedDict[str, tuple[str, datetime]] = OrderedDict()

    def get(self, token: str) -> tuple[str, datetime] | None:
        """The subject and expiry of ``token`` if it was verified and is still kept."""
        found = self._tokens.get(token)
        if found is not None:
            self._tokens.move_to_end(token)
        return found

    def add(self, token: str, subject: str, expires_at: datetime) -> None:
        """Keep a verified ``token``."""
        self._tokens[token] = (subject, expires_at)
        if len(self._tokens) > self._size:
            self._tokens.popitem(last=False)


class JwtAccessTokens(AccessTokens):
    """Issues and verifies HMAC-signed JWT access tokens."""

    def __init__(
        self,
        secret: str,
        *,
        ttl: timedelta = timedelta(minutes=15),
        algorithm: HmacAlgorithm = "HS256",
        clock: Clock | None = None,
        verified: VerifiedTokens | None = None,
    ) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES[algorithm]:
            raise ValueError(
                f"the JWT secret must be at least {MIN_SECRET_BYTES[algorithm]} bytes "
                f"for {algorithm}"
            )
        self._secret = secret
        self._ttl = ttl
        self._algorithm = algorithm
        self._clock = clock or SystemClock()
        self._verified = verified if verified is not None else VerifiedTokens()

    def issue(self, user_id: str) -> IssuedAccessToken:
        now = self._clock.now()
        expires_at = now + self._ttl
        claims = {
            "sub": user_id,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_urlsafe(12),
            "typ": ACCESS_TOKEN_TYPE,
        }
        token = jwt.encode(claims, self._secret, algorithm=self._algorithm)
        return IssuedAccessToken(token=token, expires_in=int(self._ttl.total_seconds()))

    def verify(self, token: str) -> str:
        return self.verify_expiring(token)[0]

    def verify_expiring(self, token: str) -> tuple[str, datetime | None]:
        known = self._verified.get(token)
        if known is None:
            known = self._decode(token)
            self._verified.add(token, *known)
        subject, expires_at = known
        # Expiry is checked on every use, remembered or not.
        if self._clock.now() >= expires_at:
            raise Unauthorized("access token expired")
        return subject, expires_at

    def _decode(self, token: str) -> tuple[str, datetime]:
        """Check the signature and claims (not the expiry): the subject and expiry."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                # Expiry is checked by the caller against the injected clock, the same one that
                # set ``exp`` at issue (PyJWT would use the wall clock).
                options={"require": _REQUIRED_CLAIMS, "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            # Tampered, wrong algorithm, alg "none", malformed: one answer for all.
            raise Unauthorized("invalid access token") from exc
        expires_at = claims.get("exp")
        if not isinstance(expires_at, int):
            raise Unauthorized("access token expired")
        subject = claims.get("sub")
        if claims.get("typ") != ACCESS_TOKEN_TYPE or not isinstance(subject, str) or not subject:
            raise Unauthorized("invalid access token")
        return subject, datetime.fromtimestamp(expires_at, UTC)
