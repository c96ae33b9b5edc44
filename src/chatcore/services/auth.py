"""Registration, login and the refresh-token lifecycle (rotation on use, revocation)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from attrs import define, field

from chatcore import limits
from chatcore.errors import Unauthorized
from chatcore.models import AuthSession, RefreshToken, User
from chatcore.ports import (
    AccessTokens,
    Clock,
    IdGenerator,
    PasswordHasher,
    RefreshTokenRepository,
    UserRepository,
)

_BAD_LOGIN = "invalid username or password"


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are 256-bit random secrets, so a fast hash is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


@define(kw_only=True)
class AuthService:
    """Register, log in, refresh (rotating the refresh token) and log out."""

    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    passwords: PasswordHasher
    access_tokens: AccessTokens
    clock: Clock
    ids: IdGenerator
    refresh_ttl: timedelta = timedelta(days=30)
    _dummy_hash: str | None = field(default=None, init=False)

    async def register(
        self, username: str, password: str, display_name: str | None = None
    ) -> AuthSession:
        """Create a user and log them in. Raises Conflict if the username is taken."""
        username = limits.username(username)
        password = limits.password(password)
        name = limits.display_name(display_name) if display_name is not None else username
        user = User(
            id=self.ids.new_id(),
            username=username,
            display_name=name,
            created_at=self.clock.now(),
        )
        await self.users.add(user, await self.passwords.hash(password))
        return await self._session_for(user)

    async def login(self, username: str, password: str) -> AuthSession:
        """Raises Unauthorized, with the same message whether the user exists or not."""
        if len(password) > limits.PASSWORD_MAX or len(username) > limits.USERNAME_MAX:
            # No such account can exist; don't feed huge inputs to the hasher.
            raise Unauthorized(_BAD_LOGIN)
        credentials = await self.users.find_credentials(username)
        if credentials is None:
            # Spend the same time as a real check so response times don't reveal usernames.
            await self.passwords.verify(await self._dummy(), password)
            raise Unauthorized(_BAD_LOGIN)
        if not await self.passwords.verify(credentials.password_hash, password):
            raise Unauthorized(_BAD_LOGIN)
        return await self._session_for(credentials.user)

    async def refresh(self, refresh_token: str) -> AuthSession:
        """Trade a refresh token for a new session; the old refresh token stops working."""
        stored = await self.refresh_tokens.consume(
            hash_refresh_token(refresh_token), self.clock.now()
        )
        if stored is None:
            raise Unauthorized("invalid or expired refresh token")
        user = await self.users.get(stored.user_id)
        if user is None:
            raise Unauthorized("invalid or expired refresh token")
        return await self._session_for(user)

    async def logout(self, refresh_token: str) -> None:
        """Revoke a refresh token. Unknown tokens are accepted (logout is idempotent)."""
        await self.refresh_tokens.revoke(hash_refresh_token(refresh_token))

    def authenticate(self, access_token: str) -> str:
        """The user id an access token stands for; raises Unauthorized."""
        return self.access_tokens.verify(access_token)

    async def _session_for(self, user: User) -> AuthSession:
        access = self.access_tokens.issue(user.id)
        refresh = secrets.token_urlsafe(32)
        now = self.clock.now()
        await self.refresh_tokens.add(
            RefreshToken(
                token_hash=hash_refresh_token(refresh),
                user_id=user.id,
                created_at=now,
                expires_at=now + self.refresh_ttl,
            )
        )
        return AuthSession(
            user=user,
            access_token=access.token,
            refresh_token=refresh,
            expires_in=access.expires_in,
        )

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.passwords.hash(secrets.token_urlsafe(16))
        return self._dummy_hash
