"""Text from a user's files made safe to print on a terminal.

Block names, project names, file names, class names and the messages that quote them come from
files anyone can write. Printed raw, an escape sequence in a block name (ESC ] 0 ; … BEL) retitles
the terminal or worse, a NUL or a carriage return hides text, and a bidi override (U+202E) shows
a name backwards. Every printing path of the command line passes such text through `printable`
(or `printable_json`), which writes each of these characters as a visible escape (\\x1b, \\x00,
\\u202e) and leaves every other character, newlines and tabs included, as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, and Unicode's Bidi_Control characters
# (the arabic letter mark, the left-to-right and right-to-left marks, embeddings, overrides and
# isolates)
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: Any) -> str:
    """`text` (or str() of it) with every control and bidi character written as an escape."""
    return UNSAFE.sub(_escape, text if isinstance(text, str) else str(text))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def printable_json(data: Any, **options: Any) -> str:
    """json.dumps (non-ASCII kept readable) with the characters JSON itself leaves raw (DEL,
    C1 controls, bidi controls) written as \\uXXXX escapes: the same data, safe to print."""
    text = json.dumps(data, ensure_ascii=False, **options)
    return UNSAFE.sub(_json_escape, text)
