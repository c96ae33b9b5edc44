"""The distribution runs: ``python -m build`` makes an sdist and, from it, a wheel; the
wheel installed into a fresh virtualenv serves the app against a MongoDB URI.

What this proves: the sdist holds everything the wheel needs (the wheel is built from
the unpacked sdist, as ``python -m build`` does), the wheel carries the static files,
the vendored socket.io-client and ``py.typed``, and ``pip install chatcore`` with no
extra gives a working library and server. The virtualenv is new, made by the same
interpreter, without system site-packages, outside the repository, and gets the wheel
(not editable) plus exactly the dependencies its metadata declares, resolved by pip.

Speed: the dependencies are downloaded once into ``.venv/wheelhouse/<hash of the
wheel's Requires-Dist>`` (from pip's configured index and cache, like ``make
install``) and installed offline from there afterwards; the build uses the
``build``/``hatchling`` of .venv (``--no-isolation``). About 20 s with the
wheelhouse in place.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import tarfile
import uuid
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import httpx
import pytest

from support.accounts import PASSWORD
from support.mongo import drop_database
from support.secantus import free_port
from support.serve import ServeProcess, clean_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
# Files the wheel must carry besides Python modules.
PACKAGE_DATA = (
    "chatcore/py.typed",
    "entrypoints/http/static/index.html",
    "entrypoints/http/static/chat.js",
    "entrypoints/http/static/chat.css",
    "entrypoints/http/static/vendor/socket.io.min.js",
)


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    [found] = dist.glob("chatcore-*-py3-none-any.whl")
    return found


def _requires_dist(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    return sorted(metadata.get_all("Requires-Dist") or [])


def _wheelhouse(wheel: Path) -> Path:
    """The wheels of the wheel's dependencies, downloaded once per dependency set."""
    key = hashlib.sha256("\n".join(_requires_dist(wheel)).encode()).hexdigest()[:16]
    house = WHEELHOUSE / key
    if not (house / ".complete").exists():
        _run(sys.executable, "-m", "pip", "download", "--quiet", "-d", house, wheel, cwd=ROOT)
        (house / ".complete").touch()
    return house


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh virtualenv (outside the repository) with the wheel and its dependencies;
    returns its bin directory."""
    env_dir = tmp_path_factory.mktemp("wheel-venv")
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    _run(
        *(sys.executable, "-m", "pip", "--python", python, "install", "--quiet"),
        *("--no-index", "--find-links", _wheelhouse(wheel), wheel),
        cwd=env_dir,
    )
    return env_dir / "bin"


def test_the_sdist_and_the_wheel_carry_the_package_data(dist: Path, wheel: Path) -> None:
    [sdist] = dist.glob("chatcore-*.tar.gz")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())

    for path in PACKAGE_DATA:
        assert path in in_wheel
        assert f"src/{path}" in in_sdist
    assert "docs/api.md" in in_sdist
    assert not [n for n in in_wheel if n.startswith(("tests/", "bench/"))]


def test_the_installed_package_is_the_wheel_not_the_source_tree(installed: Path) -> None:
    where = _run(
        installed / "python",
        *("-c", "import chatcore, entrypoints; print(chatcore.__file__, entrypoints.__file__)"),
        cwd=installed,
        env=clean_env(),
    )
    assert str(ROOT) not in where
    assert all("/site-packages/" in path for path in where.split())
    assert _run(installed / "chatcore", "--version", cwd=installed).strip() == "chatcore 0.1.0"
    # No extra was asked for: the embedded database (an optional GPL extra) is absent.
    _run(
        installed / "python",
        *("-c", "import importlib.util as u, sys; sys.exit(u.find_spec('secantus') is not None)"),
        cwd=installed,
    )


def test_serve_without_a_uri_or_the_embedded_extra_says_how_to_get_one(
    installed: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(installed / "chatcore"), "serve", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "pip install 'chatcore[embedded]'" in line
    assert "CHATCORE_MONGODB_URI" in line


async def test_the_installed_wheel_serves_against_a_mongodb_uri(
    installed: Path, tmp_path: Path, mongo_uri: str
) -> None:
    database = f"wheel_{uuid.uuid4().hex[:12]}"
    env = clean_env(CHATCORE_MONGODB_URI=mongo_uri, CHATCORE_MONGODB_DATABASE=database)
    data_dir = tmp_path / "data"
    server = ServeProcess(
        data_dir, free_port(), tmp_path / "serve.log", env=env, chatcore=installed / "chatcore"
    )
    server.start()
    try:
        server.wait_healthy()
        async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
            page = await http.get("/")
            assert page.status_code == 200
            assert "text/html" in page.headers["content-type"]
            for asset in ("/static/chat.js", "/static/vendor/socket.io.min.js"):
                assert (await http.get(asset)).status_code == 200, asset
            assert (await http.get("/docs")).status_code == 200
            assert "/api/auth/register" in (await http.get("/openapi.json")).json()["paths"]

            alice = await http.post(
                "/api/auth/register", json={"username": "alice", "password": PASSWORD}
            )
            bob = await http.post(
                "/api/auth/register", json={"username": "bob", "password": PASSWORD}
            )
            assert alice.status_code == bob.status_code == 201, alice.text
            sent = await http.post(
                f"/api/messages/{bob.json()['user']['id']}",
                json={"body": "from the wheel"},
                headers={"Authorization": f"Bearer {alice.json()['accessToken']}"},
            )
            assert sent.status_code == 201, sent.text
            assert sent.json()["seq"] == 1
        assert server.stop(signal.SIGTERM) == 0, server.log
    finally:
        server.kill()
        await drop_database(mongo_uri, database)
