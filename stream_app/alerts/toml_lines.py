"""Where things are in a TOML text: ``tomllib`` gives values without positions, and a rule error
has to name the line of the rule it is about.

The text has already been parsed by ``tomllib`` when these helpers run, so it is valid TOML; they
only need to tell a statement (a table header or a ``key = value`` line) from the inside of a
multi-line string or array.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"""\[\[\s*(?:rule|"rule"|'rule')\s*\]\]""")
_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_END = re.compile(r"\s*\(at end of document\)$")


def statement_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of every line that starts a statement; blank lines,
    comments and lines inside multi-line strings or arrays are left out.

    >>> statement_lines("a = '''\\n[[rule]]\\n'''\\nb = [  # c\\n  ']',\\n]\\n\\n# d\\n[[rule]]\\n")
    [(1, "a = '''"), (4, 'b = [  # c'), (9, '[[rule]]')]
    """
    statements: list[tuple[int, str]] = []
    open_string: str | None = None  # delimiter of a multi-line string still open
    depth = 0  # open brackets and braces of a value spanning lines
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if open_string is None and depth == 0 and stripped and not stripped.startswith("#"):
            statements.append((number, stripped))
        i = 0
        while i < len(line):
            if open_string is not None:
                end = _string_end(line, i, open_string)
                if end < 0:
                    break
                i, open_string = end, None
                continue
            char = line[i]
            if char == "#":
                break
            if char in "\"'":
                delimiter = char * 3 if line.startswith(char * 3, i) else char
                end = _string_end(line, i + len(delimiter), delimiter)
                if end < 0:  # in valid TOML only a multi-line string runs past its line
                    open_string = delimiter
                    break
                i = end
                continue
            if char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
            i += 1
    return statements


def _string_end(line: str, start: int, delimiter: str) -> int:
    """Index just past the delimiter closing a string whose body starts at ``start``, or -1.

    >>> _string_end('"a\\\\"b" x', 1, '"'), _string_end("'''a''''", 3, "'''")
    (6, 8)
    >>> _string_end("ab", 0, '"')
    -1
    """
    i = start
    while i < len(line):
        if line[i] == "\\" and delimiter[0] == '"':
            i += 2
            continue
        if line.startswith(delimiter, i):
            end = i + len(delimiter)
            if len(delimiter) == 3:  # a multi-line string may end with up to two more quotes
                while end < i + 5 and line.startswith(delimiter[0], end):
                    end += 1
            return end
        i += 1
    return -1


def rule_header_lines(statements: list[tuple[int, str]]) -> list[int]:
    """Lines of the ``[[rule]]`` headers, in file order.

    >>> rule_header_lines([(1, "[[rule]]"), (2, "name = 'x'"), (4, '[[ "rule" ]] # b')])
    [1, 4]
    """
    return [number for number, text in statements if _HEADER.match(text)]


def top_level_key_line(statements: list[tuple[int, str]], key: str) -> int:
    """The line where a top-level key is set: a ``key = ...`` line before the first table
    header, or a ``[key]`` / ``[[key]]`` / ``[key.sub]`` header. 1 when it cannot be told.

    >>> top_level_key_line([(2, "version = 1"), (3, "[[rule]]"), (4, "name = 'x'")], "version")
    2
    >>> top_level_key_line([(3, "[[rule]]"), (4, "name = 'x'"), (6, "[name]")], "name")
    6
    """
    quoted = rf"""(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')"""
    assignment = re.compile(rf"{quoted}\s*[.=]")
    header = re.compile(rf"\[\[?\s*{quoted}\s*[.\]]")
    in_tables = False
    for number, text in statements:
        if header.match(text):
            return number
        in_tables = in_tables or text.startswith("[")
        if not in_tables and assignment.match(text):
            return number
    return 1


def syntax_error_position(message: str, text: str) -> tuple[int, str]:
    """The line a ``tomllib`` error message points at, and the message without its position.

    >>> syntax_error_position("Invalid value (at line 3, column 7)", "")
    (3, 'Invalid value')
    >>> syntax_error_position("Unterminated string (at end of document)", 'a = 1\\nb = "x\\n\\n')
    (2, 'Unterminated string')
    """
    if match := _POSITION.search(message):
        return int(match.group(1)), message[: match.start()]
    if match := _END.search(message):
        return text.rstrip().count("\n") + 1, message[: match.start()]
    return 1, message
