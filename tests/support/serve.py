"""``chatcore serve`` as a child process: the venv's script on a port of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHATCORE = Path(sys.executable).with_name("chatcore")


def start_serve(
    port: int, data_dir: Path, log_path: Path, *, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start ``chatcore serve`` on 127.0.0.1:``port`` with ``data_dir``, its output
    appended to ``log_path``; ``cwd`` should hold no stray .env of the repository."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                str(CHATCORE),
                *("serve", "--host", "127.0.0.1", "--port", str(port)),
                *("--data-dir", str(data_dir)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
