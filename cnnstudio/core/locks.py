"""A lock file that says which process is using a folder, and whether that process still runs.

`FolderLock` creates `<folder>/<name>` with O_CREAT | O_EXCL, so of two processes (or two
threads) only one can create it; the file holds the owner's process id and start time. A lock
left behind by a process that has died (killed, power cut) is stale: the next taker notices that
the process is gone and takes the lock over. The start time tells a process id the system has
given to a new process apart from the original owner.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

StrPath = str | os.PathLike


def process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, started: str | None = None) -> bool:
    """True while process `pid` runs (and, given its start time, is still the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError:
        return False
    if started is not None:
        now = process_start(pid)
        return now is None or now == started
    return True


def create_lock_file(path: Path) -> int:
    """Create `path` for writing, failing with FileExistsError when it exists (O_EXCL): of two
    takers only one can create it. The descriptor is the caller's to close."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


class LockHeld(Exception):
    """The folder is locked by a running process; `pid` says which."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


class FolderLock:
    """An exclusive lock on a folder, held by this process until `release`."""

    def __init__(self, folder: StrPath, name: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.held = False
        self.created_folder = False
        self._text = f"{os.getpid()} {process_start(os.getpid()) or '-'}\n"

    def acquire(self, create_folder: bool = True) -> FolderLock:
        """Take the lock (creating the folder if asked), or raise LockHeld naming the owner.

        OSError when the folder cannot be created or written.
        """
        if create_folder and not self.folder.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self.created_folder = True
        for _ in range(3):  # a stale lock taken over, then a new try
            try:
                fd = create_lock_file(self.path)
            except FileExistsError:
                owner = self.owner()
                if owner is not None and process_alive(*owner):
                    raise LockHeld(self._held_message(owner[0]), owner[0]) from None
                self._remove_stale(owner)
                continue
            try:
                os.write(fd, self._text.encode("ascii"))
            except OSError:
                os.close(fd)
                os.unlink(self.path)
                raise
            os.close(fd)
            self.held = True
            return self
        owner = self.owner()
        pid = owner[0] if owner else 0
        raise LockHeld(self._held_message(pid), pid)

    def owner(self) -> tuple[int, str | None] | None:
        """(pid, start time) written in the lock file; None if it is gone or unreadable."""
        try:
            fields = self.path.read_text(encoding="ascii", errors="replace").split()
            pid = int(fields[0])
        except (OSError, ValueError, IndexError):
            return None
        started = fields[1] if len(fields) > 1 and fields[1] != "-" else None
        return pid, started

    def _remove_stale(self, owner: tuple[int, str | None] | None) -> None:
        """Remove the stale lock of `owner`, never a lock another process took meanwhile.

        The file is first renamed (only one taker can move it), then checked: if it is not the
        stale lock after all, it is put back with a hard link, which fails rather than replace
        a lock created since.
        """
        aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another taker moved it first
        try:
            moved = FolderLock(self.folder, aside.name).owner()
            if moved is not None and moved != owner and process_alive(*moved):
                with contextlib.suppress(OSError):
                    os.link(aside, self.path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(aside)

    def _held_message(self, pid: int) -> str:
        who = "this program" if pid == os.getpid() else f"process {pid}"
        return f"{self.folder} is locked by {who} ({self.path.name})"

    def release(self) -> None:
        """Remove the lock file if it is still this process's, and a folder `acquire` created
        if nothing else was written into it."""
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(OSError):
            if self.path.read_text(encoding="ascii", errors="replace") == self._text:
                self.path.unlink()
        if self.created_folder:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
