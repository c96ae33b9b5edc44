"""Settings from the environment, and the JWT secret kept in the data directory."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.jwt_tokens import JwtAccessTokens
from entrypoints.cli import _drop_per_connection_lines
from entrypoints.embedded_db import size_bytes
from entrypoints.settings import JWT_SECRET_FILE, Settings, read_or_create_secret


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHATCORE_MONGODB_URI", "CHATCORE_JWT_SECRET", "CHATCORE_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings()
    assert (settings.host, settings.port, settings.mongodb_uri) == ("127.0.0.1", 8000, None)
    assert settings.max_body_bytes == 64 * 1024


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATCORE_PORT", "9001")
    monkeypatch.setenv("CHATCORE_CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("CHATCORE_MONGODB_URI", "  ")
    monkeypatch.setenv("CHATCORE_LOG_LEVEL", "debug")
    settings = _settings()
    assert settings.port == 9001
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.mongodb_uri is None  # blank means unset
    assert settings.log_level == "DEBUG"


def test_settings_are_frozen() -> None:
    settings = _settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(("secret", "algorithm"), [("short", "HS256"), ("x" * 40, "HS512")])
def test_a_weak_jwt_secret_is_refused(secret: str, algorithm: str) -> None:
    with pytest.raises(ValidationError, match="at least"):
        _settings(jwt_secret=secret, jwt_algorithm=algorithm)
    with pytest.raises(ValueError, match="at least"):
        JwtAccessTokens(secret, algorithm=algorithm)  # type: ignore[arg-type]


def test_a_configured_secret_wins_and_touches_no_file(tmp_path: Path) -> None:
    settings = _settings(data_dir=tmp_path, jwt_secret="s" * 32)
    assert settings.resolved_jwt_secret() == "s" * 32
    assert not (tmp_path / JWT_SECRET_FILE).exists()


def test_the_generated_secret_is_private_and_reused(tmp_path: Path) -> None:
    settings = _settings(data_dir=tmp_path / "new")
    first = settings.resolved_jwt_secret()
    path = tmp_path / "new" / JWT_SECRET_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(first.encode()) >= 64
    assert _settings(data_dir=tmp_path / "new").resolved_jwt_secret() == first
    assert [p.name for p in path.parent.iterdir()] == [JWT_SECRET_FILE]  # no temp files left


def _create(path: str, barrier: Any) -> str:
    barrier.wait()
    return read_or_create_secret(Path(path))


def test_processes_racing_to_create_the_secret_agree(tmp_path: Path) -> None:
    path = tmp_path / JWT_SECRET_FILE
    processes = 6
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager, context.Pool(processes) as pool:
        barrier = manager.Barrier(processes)
        secrets = pool.starmap(_create, [(str(path), barrier)] * processes)
    assert len(set(secrets)) == 1
    assert path.read_text() == secrets[0]


def test_an_empty_secret_file_is_an_error_not_a_silent_new_secret(tmp_path: Path) -> None:
    (tmp_path / JWT_SECRET_FILE).write_text("")
    with pytest.raises(RuntimeError, match="empty"):
        _settings(data_dir=tmp_path).resolved_jwt_secret()


def test_websocket_compression_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().ws_per_message_deflate is False
    monkeypatch.setenv("CHATCORE_WS_PER_MESSAGE_DEFLATE", "true")
    assert Settings().ws_per_message_deflate is True


@pytest.mark.parametrize(
    ("level", "message", "kept"),
    [
        (logging.INFO, '%s - "WebSocket %s" [accepted]', False),
        (logging.INFO, "connection open", False),
        (logging.INFO, "connection closed", False),
        (logging.INFO, "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", True),
        (logging.WARNING, "connection open", True),
    ],
)
def test_serve_drops_only_uvicorns_per_connection_info_lines(
    level: int, message: str, kept: bool
) -> None:
    record = logging.LogRecord("uvicorn.error", level, __file__, 1, message, None, None)
    assert _drop_per_connection_lines(record) is kept


@pytest.mark.parametrize(
    ("text", "size"), [("1G", 1 << 30), ("512M", 512 << 20), ("64K", 64 << 10), ("0", 0)]
)
def test_the_embedded_database_memory_limit_is_a_size(text: str, size: int) -> None:
    assert size_bytes(_settings(embedded_max_rss=text).embedded_max_rss) == size


@pytest.mark.parametrize("text", ["", "1T", "1.5G", "-1", "G", "01G"])
def test_a_memory_limit_that_is_not_a_size_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        _settings(embedded_max_rss=text)


def test_the_memory_limit_defaults_to_one_gibibyte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATCORE_EMBEDDED_MAX_RSS", raising=False)
    assert size_bytes(_settings().embedded_max_rss) == 1 << 30
