"""Writing a user's files safely: the rules every writer of CNN Studio follows, in one place.

Every file the program writes (project files, run folders, exports, recovery copies) goes
through `staged_write`: the data goes to a temporary file beside the target, is flushed to the
disk, and only then renamed onto the target, so a crash or a full disk leaves the previous file
as it was and no temporary file behind. Before anything is written the target is checked:

- an existing target must be a regular file. Renaming onto a device, a named pipe, a socket or
  a folder (or a link to one) would replace that special file with a plain one (run as root,
  `-o /dev/null` turned the system's /dev/null into a file), so it is refused, forced or not;
- a large file is written only when the disk has room for it: some writers (TorchScript's)
  abort the whole process when the disk fills up half-way;
- a full disk at any step becomes "the disk is full: N MB needed at PATH".
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path
import tempfile
from collections.abc import Iterator

StrPath = str | os.PathLike

LARGE_FILE_BYTES = 1 << 20  # below this the free-space check is not worth a false refusal
FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class FileWriteError(OSError):
    """A write refused or failed for a reason the message spells out (with what to do).

    An OSError, so that code that already handles the errors of writing files handles these;
    `str()` is the message alone, without the "[Errno n]" prefix.
    """

    def __init__(self, message: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, message)

    def __str__(self) -> str:
        return str(self.strerror)


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for messages: 'a named pipe (FIFO)'."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def replace_refusal(path: StrPath) -> str | None:
    """Why an existing `path` must not be replaced by a new file, or None when it may be.

    None for a regular file, a link to one, a path that does not exist yet (a dangling link
    included) and a path that cannot be examined (the write itself then reports why).
    """
    try:
        info = os.stat(path)  # follows links: a link to a device is refused like the device
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode):
        return None
    kind = file_kind(info.st_mode)
    if os.path.islink(path):
        kind = f"a link to {kind}"
    return f"it is {kind}, not a regular file; choose a file name that is free or a plain file"


def check_replaceable(path: StrPath) -> None:
    """Raise FileWriteError when `path` exists and is not a regular file."""
    reason = replace_refusal(path)
    if reason is not None:
        code = errno.EISDIR if os.path.isdir(path) else errno.EINVAL
        raise FileWriteError(f"cannot write '{os.fspath(path)}': {reason}", code)


def output_refusal(path: StrPath, *, overwrite: bool = False, protected: StrPath | None = None,
                   force_hint: str = "--force on the command line") -> str | None:
    """Why a command must not write its output file at `path`, as a whole sentence for the user,
    or None when it may: a folder, a special file, a missing or unwritable folder, a read-only
    file, a path inside `protected` (a run folder, whose files stay as training wrote them) and,
    without `overwrite`, any existing file (`force_hint` says how to allow replacing it)."""
    target = Path(path).expanduser()
    parent = target.parent if str(target.parent) else Path(".")
    reason = None
    if target.is_dir():
        reason = "it is a folder; give a file name"
    else:
        reason = replace_refusal(target)
    if reason is None and not parent.is_dir():
        why = "is a file" if parent.exists() else "does not exist"
        reason = f"the folder '{parent}' {why}; create it or choose another output file"
    if reason is None and protected is not None:
        folder = Path(protected).resolve()
        if folder == target.resolve() or folder in target.resolve().parents:
            reason = (f"it is inside the run folder '{protected}', whose files must stay as "
                      "training wrote them; write it to a file outside the run folder")
    if reason is None and is_read_only(target):
        reason = ("the file is read-only; choose another file name (or make the file writable "
                  "first)")
    if reason is not None:
        return f"cannot write '{target}': {reason}"
    if target.exists() and not overwrite:
        return (f"'{target}' already exists; choose another file name, or allow replacing it "
                f"({force_hint})")
    if not os.access(parent, os.W_OK | os.X_OK):
        return (f"cannot write '{target}': permission denied in '{parent}'; choose a folder you "
                "can write to")
    return None


def is_read_only(path: StrPath) -> bool:
    """True when an existing file has no write permission bit at all.

    The mode bits, not os.access: for root os.access says every file is writable, and a file
    a user marked read-only must stay as it is whoever runs the program.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def megabytes(count: int) -> str:
    """0.1 MB at least: a small file still needs room."""
    return f"{max(count / 1e6, 0.1):,.1f} MB"


def disk_full_error(path: StrPath, needed_bytes: int,
                    free_bytes: int | None = None) -> FileWriteError:
    free = f" ({megabytes(free_bytes)} free)" if free_bytes is not None else ""
    return FileWriteError(
        f"the disk is full: {megabytes(needed_bytes)} needed at {os.fspath(path)}{free}; free "
        "some space or choose a folder on another disk", errno.ENOSPC)


def check_free_space(path: StrPath, needed_bytes: int) -> None:
    """Refuse to start a large write (LARGE_FILE_BYTES or more) the disk has no room for."""
    if needed_bytes < LARGE_FILE_BYTES:
        return
    folder = os.path.dirname(os.path.abspath(path)) or "."
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the write itself reports what is wrong with the folder
    if free < needed_bytes:
        raise disk_full_error(path, needed_bytes, free)


@contextlib.contextmanager
def staged_write(target: StrPath, *, needed_bytes: int = 0,
                 mode: int | None = None) -> Iterator[str]:
    """Yield a temporary path beside `target`; when the block ends normally, move it onto it.

    The block writes the temporary file (by path). Then it is flushed to the disk, given `mode`
    (default: the temporary file's own 0600), and renamed onto the target. The target is
    checked with `check_replaceable` before anything is written and again just before the
    rename. On any failure (an exception in the block, a full disk, Ctrl-C) the temporary
    file is removed and the target is untouched; a full disk raises "the disk is full: ...".
    """
    target = os.fspath(target)
    check_replaceable(target)
    check_free_space(target, needed_bytes)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.",
                                        suffix=".tmp")
    except OSError as err:
        if err.errno in FULL_ERRNOS:
            raise disk_full_error(target, needed_bytes) from None
        raise
    os.close(handle)
    try:
        yield temp
        _fsync_path(temp)
        if mode is not None:
            os.chmod(temp, mode)
        check_replaceable(target)
        os.replace(temp, target)
        temp = ""
        _fsync_folder(folder)
    except OSError as err:
        if err.errno in FULL_ERRNOS and not isinstance(err, FileWriteError):
            size = max(needed_bytes, _size(temp))
            raise disk_full_error(target, size) from None
        raise
    finally:
        if temp:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def _fsync_path(path: str, flags: int = os.O_RDWR) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable where the platform allows it (not on Windows)."""
    with contextlib.suppress(OSError):
        _fsync_path(folder, os.O_RDONLY)
