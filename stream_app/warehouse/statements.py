"""Which statements the read-only endpoint runs: an allow-list over the engine's own parse tree.

The tree is ClickHouse's ``EXPLAIN AST`` text, one node a line, indented one space per level,
kind first (``SelectWithUnionQuery (children 1)``, `` Function numbers (alias a)``). The endpoint
runs a statement only if :func:`refusal` finds nothing; words in the text play no part.
"""

from __future__ import annotations

#: statements that only read (``SHOW DATABASES`` parses as ``ShowTables``)
STATEMENTS = frozenset({"SelectWithUnionQuery", "ShowTables", "ShowColumns", "DescribeQuery"})
#: an ``EXPLAIN`` of one of :data:`STATEMENTS` (its first child)
EXPLAIN = "Explain"
#: table functions that generate rows; every other one reads files, URLs, other servers or runs
#: programs (``file``, ``url``, ``remote``, ``s3``, ``executable``, ``mysql``, ...)
TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "values"})
#: ordinary functions that read the server's files despite ``readonly=1`` (chDB 4.4 answers
#: ``SELECT file('/etc/passwd')``)
FILE_FUNCTIONS = frozenset({"file"})


def refusal(ast: str) -> str | None:
    """Why the statement parsed as ``ast`` is refused, or None if the endpoint may run it."""
    nodes = [_node(line) for line in ast.splitlines() if line.strip()]
    root = nodes[0][1]
    if root == EXPLAIN:
        root = nodes[1][1]
    if root not in STATEMENTS:
        return f"{root}: only SELECT, SHOW, DESCRIBE and EXPLAIN SELECT are served"
    path: list[str] = []  # the kinds from the root down to the current node's parent
    for depth, kind, name in nodes:
        del path[depth:]
        parent = path[-1] if path else ""
        path.append(kind)
        if depth == 1 and kind == "Literal":
            return "INTO OUTFILE writes files on the server: refused on read-only SQL"
        if kind == "Function" and parent == "TableExpression" and name not in TABLE_FUNCTIONS:
            allowed = ", ".join(sorted(TABLE_FUNCTIONS))
            return f"table function {name}(): only {allowed} are served"
        if kind == "Function" and name.lower() in FILE_FUNCTIONS:
            return f"function {name}() reads the server's files: refused"
    return None


def output_format(ast: str) -> str | None:
    """The format a ``FORMAT`` clause of the statement parsed as ``ast`` names, if it has one
    (the statement's only child named by an identifier)."""
    for depth, kind, name in (_node(line) for line in ast.splitlines() if line.strip()):
        if depth == 1 and kind == "Identifier":
            return name
    return None


def _node(line: str) -> tuple[int, str, str]:
    """Depth, kind and first word after the kind (a function's name) of one line of the tree."""
    words = line.split()
    return len(line) - len(line.lstrip(" ")), words[0], words[1] if len(words) > 1 else ""
