"""One typed, frozen settings object from ``CHATCORE_*`` environment variables and ``.env``."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Dev defaults work with no configuration at all."""

    model_config = SettingsConfigDict(
        env_prefix="CHATCORE_", env_file=".env", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    # Unset: the server starts the embedded SecantusDB under data_dir.
    mongodb_uri: str | None = None
    mongodb_database: str = "chatcore"
    mongodb_timeout_ms: int = Field(default=2000, ge=100)
    # Unset: generated once into data_dir/jwt-secret and reused.
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_ttl_seconds: int = Field(default=900, ge=10)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_url: str | None = None
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Comma-separated in the environment: CHATCORE_CORS_ORIGINS=https://a,https://b
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or the one kept in the data dir (created on first use)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt-secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # Created with owner-only permissions; never logged.
        path.touch(mode=0o600)
        path.write_text(secret)
        return secret
