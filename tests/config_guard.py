"""Keep the test suite out of the user's own configuration folder (~/.config/cnnstudio).

tests/conftest.py points CNNSTUDIO_CONFIG_DIR and XDG_CONFIG_HOME at a temporary folder for the
whole session before any test runs, so even a test that undoes its own monkeypatching (or code
that reads the environment after a test ended) writes its settings, runs and recovery copies
there. As a second line, it lists the real folder when the session starts and fails the session
at the end if any file appeared in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def real_config_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder CNN Studio uses when CNNSTUDIO_CONFIG_DIR is not set, as Qt finds it on
    Linux: $XDG_CONFIG_HOME, else ~/.config, then cnnstudio."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "cnnstudio"


def listing(folder: Path) -> set[str]:
    """Every file and folder under `folder`, as paths relative to it (empty when it is absent)."""
    if not folder.is_dir():
        return set()
    found = set()
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


def new_entries(folder: Path, before: set[str]) -> list[str]:
    """What appeared under `folder` since `before` was listed, sorted."""
    return sorted(listing(folder) - before)


def leak_report(folder: Path, entries: list[str], shown: int = 10) -> str:
    """The message that fails the session: where, what, and how to find the culprit."""
    names = "\n".join(f"  {folder / entry}" for entry in entries[:shown])
    more = f"\n  … and {len(entries) - shown} more" if len(entries) > shown else ""
    return (f"The test run wrote {len(entries)} file(s) into the user's configuration folder "
            f"{folder}:\n{names}{more}\nTests must write settings, runs and recovery copies "
            "under CNNSTUDIO_CONFIG_DIR (tests/conftest.py sets it); look for a test that "
            "removes that variable (monkeypatch.undo(), monkeypatch.delenv) or writes there "
            "by an absolute path.")
