"""Which characters text from a stranger (a submission, a gallery) may hold.

Control characters (C0 and C1, except newline and tab) rewrite terminals and break CSV rows;
bidirectional controls make text display in another order than it reads ("Trojan Source",
Boucher & Anderson 2021, arXiv 2111.00169). Neither belongs in a name, a citation, a
description, a parameter or a sample, so they are refused, each with the field it is in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

#: A regular-expression class body: C0 controls but tab and newline, DEL, C1 controls, the Arabic
#: letter mark, the left-to-right and right-to-left marks, and the embedding, override and isolate controls.
UNSAFE_CHARACTERS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: A JSON-schema ``pattern`` of strings free of them.
SAFE_PATTERN = rf"^[^{UNSAFE_CHARACTERS}]*$"
_UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS}]")
_NAMES = {"\x1b": "ESCAPE", "\x00": "NUL", "\r": "CARRIAGE RETURN", "\x7f": "DELETE"}


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` that is not allowed, described (``None`` if there is none)."""
    match = _UNSAFE.search(text)
    if match is None:
        return None
    char = match.group()
    name = _NAMES.get(char) or unicodedata.name(char, "a control character")
    return f"U+{ord(char):04X} ({name}) at character {match.start()}"


def replace_unsafe(text: str, replacement: str = "\ufffd") -> str:
    """``text`` with every character that is not allowed replaced."""
    return _UNSAFE.sub(replacement, text)


def escaped(text: str) -> str:
    """``text`` with every character that is not allowed written as its ``\\uXXXX`` escape (safe to print)."""
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _strings(data: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, string) for every key and string value of a parsed JSON document."""
    stack: list[tuple[tuple[str, ...], Any]] = [(path, data)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, Mapping):
            for key, value in item.items():
                yield (*where, str(key)), str(key)
                stack.append(((*where, str(key)), value))
        elif isinstance(item, list):
            stack.extend(((*where, str(index)), value) for index, value in enumerate(item))


def text_problems(data: Any, source: str, limit: int) -> list[str]:
    """One line per field of ``data`` (keys included) holding a character that is not allowed, at most ``limit``."""
    found = []
    for where, text in _strings(data):
        problem = unsafe_character(text)
        if problem is not None:
            found.append(f"{source}: field {escaped('/'.join(where)) or '(top level)'}: contains {problem}; "
                         "control and bidirectional-control characters are not allowed")
    found.sort()
    return found[:limit] + ([f"{source}: ... and {len(found) - limit} more problem(s)"] if len(found) > limit else [])
