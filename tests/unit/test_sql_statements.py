"""Which parse trees the SQL endpoint runs: ``EXPLAIN AST`` texts as chDB 4.4 prints them."""

from __future__ import annotations

import pytest

from stream_app.warehouse.statements import output_format, refusal

SELECT_FROM = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function {name} (alias a) (children 1)
       ExpressionList (children 1)
        Literal UInt64_3"""

#: ``DESCRIBE t FORMAT CSV``
DESCRIBE_FORMAT = (
    "DescribeQuery (children 2)\n TableExpression (children 1)\n  TableIdentifier t\n"
    " Identifier CSV"
)


@pytest.mark.parametrize(
    ("ast", "reason"),
    [
        (SELECT_FROM.format(name="numbers"), None),
        ("ShowTables", None),
        ("Explain EXPLAIN PIPELINE (children 1)\n SelectWithUnionQuery (children 1)", None),
        (
            SELECT_FROM.format(name="url"),
            "table function url(): only numbers, numbers_mt, values, zeros, zeros_mt are served",
        ),
        ("SYSTEM query", "SYSTEM: only SELECT, SHOW, DESCRIBE and EXPLAIN SELECT are served"),
        (
            "Explain EXPLAIN (children 1)\n SYSTEM query",
            "SYSTEM: only SELECT, SHOW, DESCRIBE and EXPLAIN SELECT are served",
        ),
        (
            "KillQueryQuery Literal_UInt64_1 ASYNC (children 1)\n Literal UInt64_1",
            "KillQueryQuery: only SELECT, SHOW, DESCRIBE and EXPLAIN SELECT are served",
        ),
        (
            "ShowTables (children 1)\n Literal \\'x\\'",
            "INTO OUTFILE writes files on the server: refused on read-only SQL",
        ),
        (DESCRIBE_FORMAT, None),
        (
            "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  Function FILE",
            "function FILE() reads the server's files: refused",
        ),
    ],
)
def test_only_reads_of_the_warehouse_pass(ast: str, reason: str | None) -> None:
    assert refusal(ast) == reason


def test_the_format_clause_is_the_statements_child_named_by_an_identifier() -> None:
    assert output_format(DESCRIBE_FORMAT) == "CSV"
    assert output_format(SELECT_FROM.format(name="numbers")) is None
    assert output_format(
        "Explain EXPLAIN (children 2)\n SelectWithUnionQuery\n Identifier JSON"
    ) == ("JSON")
