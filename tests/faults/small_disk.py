"""A data directory on a disk of its own, small enough to fill in a test.

A tmpfs of a fixed size mounted on the data directory inside a user and mount
namespace of the server's own (``unshare``): no root needed, nothing mounted
outside, and the mount ends with the server. The server's command line runs
under :attr:`SmallDisk.wrap`; the test reaches the disk through
``/proc/<server pid>/root``, where the kernel resolves paths in the server's
mount namespace.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

from attrs import define

# Mount, then become the command given after the size and the mount point.
_MOUNT_THEN_EXEC = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
_UNSHARE = ("unshare", "--user", "--map-root-user", "--mount")
BALLAST = "ballast"


def unavailable_reason(scratch: Path) -> str | None:
    """Why no small disk can be made here (None: it can); ``scratch``: a directory
    to try a mount on (made if missing; nothing stays mounted on it)."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    scratch.mkdir(parents=True, exist_ok=True)
    tried = subprocess.run(
        [*_UNSHARE, "sh", "-c", _MOUNT_THEN_EXEC, "probe", "1m", str(scratch), "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if tried.returncode != 0:
        return f"no tmpfs in a user namespace here: {tried.stderr.strip()}"
    return None


@define
class SmallDisk:
    """A ``size`` tmpfs (``mount -o size=``, e.g. ``64m``) on ``data_dir``."""

    data_dir: Path
    size: str

    @property
    def wrap(self) -> list[str]:
        """The command to run the server under (see ``support.serve.start_serve``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)  # the mount point
        return [
            *_UNSHARE,
            "sh",
            "-c",
            _MOUNT_THEN_EXEC,
            "small-disk",
            self.size,
            str(self.data_dir),
        ]

    def seen_by(self, pid: int) -> Path:
        """The data directory as the process ``pid`` (in the namespace) sees it."""
        return Path(f"/proc/{pid}/root") / self.data_dir.relative_to("/")

    def free_bytes(self, pid: int) -> int:
        stats = os.statvfs(self.seen_by(pid))
        return stats.f_bavail * stats.f_frsize

    def fill(self, pid: int) -> int:
        """Write a ballast file until the disk is full; the bytes it took."""
        written = 0
        chunk = b"\0" * (1 << 20)
        with (self.seen_by(pid) / BALLAST).open("ab", buffering=0) as ballast:
            while True:
                try:
                    written += ballast.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return written
                    chunk = chunk[: len(chunk) // 2]  # the last blocks, smaller

    def empty(self, pid: int) -> None:
        """Remove the ballast: the space is free again."""
        (self.seen_by(pid) / BALLAST).unlink()
