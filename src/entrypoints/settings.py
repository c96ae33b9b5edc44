"""One typed, frozen settings object from ``CHATCORE_*`` environment variables and ``.env``."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.jwt_tokens import MIN_SECRET_BYTES
from chatcore.rate_limits import RateLimits, parse_rate

JWT_SECRET_FILE = "jwt-secret"

# The five rate-limit settings (each "<count>/<seconds>s" or "off").
RATE_LIMIT_SETTINGS = ("rate_send", "rate_login", "rate_register", "rate_api", "rate_typing")


def rate_limits_off_env() -> dict[str, str]:
    """``CHATCORE_RATE_*=off`` for all five: servers under load tests and benchmarks."""
    return {f"CHATCORE_{name.upper()}": "off" for name in RATE_LIMIT_SETTINGS}


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Dev defaults work with no configuration at all."""

    model_config = SettingsConfigDict(
        env_prefix="CHATCORE_", env_file=".env", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    # Unset: `chatcore serve` starts the embedded SecantusDB under data_dir/db.
    mongodb_uri: str | None = None
    # Unset: the database named in the URI, else "chatcore".
    mongodb_database: str | None = None
    mongodb_timeout_ms: int = Field(default=2000, ge=100)
    # Unset: generated once into data_dir/jwt-secret and reused.
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_ttl_seconds: int = Field(default=900, ge=10)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Set: several processes share Socket.IO fan-out and presence through Redis.
    redis_url: str | None = None
    # Every Redis key and channel starts with this (several deployments, one Redis).
    redis_prefix: str = "chatcore:"
    # A crashed process's users go offline within about 1.34 x this (TTL + sweep).
    presence_ttl_seconds: float = Field(default=10.0, ge=0.5, le=300)
    log_level: LogLevel = "INFO"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # WebSocket per-message deflate (RFC 7692) in `chatcore serve`; see bench/RESULTS.md.
    ws_per_message_deflate: bool = False
    # uvicorn's WebSocket implementation in `chatcore serve` (entrypoints/socketio/lean.py);
    # bench/RESULTS.md compares them.
    ws_protocol: Literal["lean", "websockets-sansio", "wsproto"] = "lean"
    # `chatcore serve` on SIGTERM/SIGINT: drain, then stop, within this many seconds.
    shutdown_grace_seconds: float = Field(default=10.0, ge=1, le=300)
    # The embedded database: fsync on every commit (acknowledged = survives a crash),
    # and its WiredTiger cache size, e.g. 128M, 1G (bench/RESULTS.md: its memory).
    embedded_sync_on_commit: bool = True
    embedded_cache_size: str = Field(default="128M", pattern=r"^[1-9][0-9]*[KMG]$")
    # Restart the embedded database (a ~2 s outage) when its resident size passes this,
    # e.g. 512M, 1G; 0: never. SecantusDB grows with every transaction (docs/configuration.md).
    embedded_max_rss: str = Field(default="1G", pattern=r"^(0|[1-9][0-9]*[KMG]?)$")
    # Rate limits of the public contract (API.md v1.1): "<count>/<seconds>s" or "off".
    rate_send: str = "30/10s"
    rate_login: str = "10/60s"
    rate_register: str = "20/60s"
    rate_api: str = "600/60s"
    rate_typing: str = "20/10s"
    # Sockets one user may hold open on one server process (tabs, devices).
    max_sockets_per_user: int = Field(default=20, ge=1)
    # Engine.IO sessions must complete an authenticated connect within this many seconds,
    # and at most this many may be waiting to at once (per process).
    socket_handshake_timeout_seconds: float = Field(default=10.0, gt=0)
    max_unauthenticated_sockets: int = Field(default=1000, ge=1)
    # Proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client; default none.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("rate_send", "rate_login", "rate_register", "rate_api", "rate_typing")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)  # raises ValueError with what a rate looks like
        return value.strip()

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one
        return value

    def rate_limits(self) -> RateLimits:
        """The five ``rate_*`` settings as the domain's limits (None where ``off``)."""
        return RateLimits(
            send=parse_rate(self.rate_send),
            login=parse_rate(self.rate_login),
            register=parse_rate(self.rate_register),
            api=parse_rate(self.rate_api),
            typing=parse_rate(self.rate_typing),
        )

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # Comma-separated in the environment: CHATCORE_CORS_ORIGINS=https://a,https://b
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("mongodb_uri", "redis_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `CHATCORE_MONGODB_URI=` in a .env file means "not set", not "connect to ''".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _check_secret_strength(self) -> Settings:
        if self.jwt_secret is not None:
            wanted = MIN_SECRET_BYTES[self.jwt_algorithm]
            if len(self.jwt_secret.get_secret_value().encode()) < wanted:
                raise ValueError(
                    f"CHATCORE_JWT_SECRET must be at least {wanted} bytes for {self.jwt_algorithm}"
                )
        return self

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or the one kept in the data dir (created on first use)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return read_or_create_secret(self.data_dir / JWT_SECRET_FILE)


def read_or_create_secret(path: Path) -> str:
    """Read the secret at ``path``, or create it: owner-only (0600), never logged.

    Race-safe: the secret is written to a private temporary file which is then
    hard-linked into place. Linking fails if the name exists, so of several
    processes starting at once exactly one secret wins, and nobody can read a
    half-written file.
    """
    with contextlib.suppress(FileNotFoundError):
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(64)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secret)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_secret(path)
        return secret
    finally:
        os.unlink(tmp)


def _read_secret(path: Path) -> str:
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty: delete it to generate a new JWT secret")
    return secret
