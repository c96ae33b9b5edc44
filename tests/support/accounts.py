"""A registered user as the API's session answer describes it, and its auth headers."""

from __future__ import annotations

from typing import Any

from attrs import frozen

PASSWORD = "correct horse battery"


@frozen
class Account:
    id: str
    username: str
    access_token: str
    refresh_token: str

    @classmethod
    def from_session(cls, session: dict[str, Any]) -> Account:
        """From the body of a 201 /api/auth/register (or a login) answer."""
        return cls(
            id=session["user"]["id"],
            username=session["user"]["username"],
            access_token=session["accessToken"],
            refresh_token=session["refreshToken"],
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}
