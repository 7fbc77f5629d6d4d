"""Regression: PySide6 6.12.0 on Python 3.11 aborts after a few hundred Signal.emit() calls.

The project pins PySide6-Essentials below 6.12; this test emits 10,000 signals (with and
without arguments, and across a queued connection) in a child process, so an abort shows up
as a failed test rather than a dead test run.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import os
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    plain = Signal()
    flag = Signal(bool)
    payload = Signal(object)

app = QCoreApplication([])
e = Emitter()
got = {"plain": 0, "flag": 0, "payload": 0}
e.plain.connect(lambda: got.__setitem__("plain", got["plain"] + 1))
e.flag.connect(lambda v: got.__setitem__("flag", got["flag"] + int(v)))
e.payload.connect(lambda v: got.__setitem__("payload", got["payload"] + len(v)))
for i in range(10_000):
    e.plain.emit()
    e.flag.emit(True)
    e.payload.emit({"step": i})
print(got["plain"], got["flag"], got["payload"])
"""


def test_ten_thousand_emits_do_not_crash_the_interpreter():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["10000", "10000", "10000"]


def test_pyside_version_is_below_6_12():
    import PySide6

    major, minor = (int(x) for x in PySide6.__version__.split(".")[:2])
    assert (major, minor) < (6, 12), PySide6.__version__
