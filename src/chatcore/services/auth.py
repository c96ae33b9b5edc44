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
from chatcore.services.throttle import Throttle

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
    throttle: Throttle
    refresh_ttl: timedelta = timedelta(days=30)
    _dummy_hash: str | None = field(default=None, init=False)

    async def register(
        self,
        username: str,
        password: str,
        display_name: str | None = None,
        *,
        client_address: str | None = None,
    ) -> AuthSession:
        """Create a user and log them in. Raises Conflict if the username is taken,
        RateLimited past the registrations allowed from ``client_address``."""
        username = limits.username(username)
        password = limits.password(password)
        name = limits.display_name(display_name) if display_name is not None else username
        await self.throttle.register(client_address)
        user = User(
            id=self.ids.new_id(),
            username=username,
            display_name=name,
            created_at=self.clock.now(),
        )
        await self.users.add(user, await self.passwords.hash(password))
        return await self._session_for(user)

    async def login(
        self, username: str, password: str, *, client_address: str | None = None
    ) -> AuthSession:
        """Raises Unauthorized, with the same message whether the user exists or not;
        RateLimited past the failed logins allowed for (``client_address``, username),
        before the password is checked."""
        if len(password) > limits.PASSWORD_MAX or len(username) > limits.USERNAME_MAX:
            # No such account can exist; don't feed huge inputs to the hasher.
            raise Unauthorized(_BAD_LOGIN)
        # Counted before the (slow) check so that concurrent guesses are bounded too;
        # given back below when the password was right.
        await self.throttle.login_attempt(client_address, username)
        credentials = await self.users.find_credentials(username)
        if credentials is None:
            # Spend the same time as a real check so response times don't reveal usernames.
            await self.passwords.verify(await self._dummy(), password)
            raise Unauthorized(_BAD_LOGIN)
        if not await self.passwords.verify(credentials.password_hash, password):
            raise Unauthorized(_BAD_LOGIN)
        await self.throttle.login_succeeded(client_address, username)
        return await self._session_for(credentials.user)

    async def refresh(self, refresh_token: str) -> AuthSession:
        """Trade a refresh token for a new session; the old refresh token stops working.

        Replaying a token that was already traded in (reuse detection, OAuth 2.0
        security best practice) revokes its whole family: every token rotated from the
        same login, the current one included. One of the two holders is an attacker
        with a stolen token, and which one cannot be told."""
        token_hash = hash_refresh_token(refresh_token)
        stored = await self.refresh_tokens.consume(token_hash, self.clock.now())
        if stored is None:
            reused = await self.refresh_tokens.find_used(token_hash)
            if reused is not None:
                await self.refresh_tokens.revoke_family(reused.family)
            raise Unauthorized("invalid or expired refresh token")
        user = await self.users.get(stored.user_id)
        if user is None:
            raise Unauthorized("invalid or expired refresh token")
        return await self._session_for(user, family=stored.family)

    async def logout(self, user_id: str, refresh_token: str) -> None:
        """Revoke one of ``user_id``'s refresh tokens. Unknown tokens, and anyone else's,
        are accepted and left alone (logout is idempotent and can't log others out)."""
        await self.refresh_tokens.revoke(hash_refresh_token(refresh_token), user_id)

    def authenticate(self, access_token: str) -> str:
        """The user id an access token stands for; raises Unauthorized."""
        return self.access_tokens.verify(access_token)

    def authenticate_until(self, access_token: str) -> tuple[str, float | None]:
        """The user id an access token stands for and the seconds until it expires
        (None: unknown); raises Unauthorized. For connections that must end with it."""
        user_id, expires_at = self.access_tokens.verify_expiring(access_token)
        if expires_at is None:
            return user_id, None
        return user_id, (expires_at - self.clock.now()).total_seconds()

    async def _session_for(self, user: User, *, family: str = "") -> AuthSession:
        """A new session; its refresh token joins ``family`` (a login starts one)."""
        access = self.access_tokens.issue(user.id)
        refresh = secrets.token_urlsafe(32)
        token_hash = hash_refresh_token(refresh)
        now = self.clock.now()
        await self.refresh_tokens.add(
            RefreshToken(
                token_hash=token_hash,
                user_id=user.id,
                created_at=now,
                expires_at=now + self.refresh_ttl,
                family_id=family or token_hash,
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
