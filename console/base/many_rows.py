"""Statements over many rows at once, each built and compiled once whatever the count: a
group of web forms (or a sweep) reads and writes its rows in a fixed number of statements.

- `ByPairs`: the rows whose (first, second) is one of many pairs, one index probe per pair.
- `RowsInsert`: many new rows of a table in one statement.
- `json_rows`: rows as SQLite's one `json_each` parameter.
- `execute_core`: a Core statement past the ORM's execute.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    insert,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import JSON, TypeEngine

from console.base.db import dialect_of


async def execute_core(
    session: AsyncSession, statement: Executable, params: Any = None
) -> Result[*tuple[Any, ...]]:
    """A Core statement on the session's connection, past the ORM's execute and the CPU it
    adds to every statement. Unless the session holds ORM changes not yet flushed: then through
    the session, whose autoflush writes them first, as the statement may depend on them."""
    if session.new or session.dirty or session.deleted:
        return await session.execute(statement, params)
    return await (await session.connection()).execute(statement, params)


class ByPairs:
    """A lookup of the rows whose (first, second) is one of many pairs, built once per dialect
    (`statements`; `params` fills them for one list of pairs), with one probe of the unique
    index on (first, second) per pair however big the table:

    - PostgreSQL: the pairs unnested from two array parameters, each looked up in a LATERAL
      subquery with LIMIT 1, which the planner cannot turn into a join. `first IN (…) AND
      second IN (…)` read every row of the businesses named and filtered them, so a web-form
      group's lookups grew with the tables, and a plain join on the unnested pairs still chose
      a whole-table scan for contacts.
    - SQLite: the pairs as one JSON parameter, `json_each` joined to the table (its planner
      walks the list and probes the index). `first IN (…) AND second IN (…)` probed every
      combination of the two lists, `(first, second) IN (VALUES …)` scans the table, and a
      VALUES list of the pairs cannot be cached, so it was compiled again for every group.

    `name` keeps the parameters of two lookups in one statement apart."""

    def __init__(
        self,
        name: str,
        columns: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
        first: QueryableAttribute[Any],
        second: QueryableAttribute[Any],
    ) -> None:
        self.name, self.types = name, (first.expression.type, second.expression.type)
        unnested = (
            func.unnest(
                bindparam(f"{name}_firsts", type_=postgresql.ARRAY(self.types[0])),
                bindparam(f"{name}_seconds", type_=postgresql.ARRAY(self.types[1])),
            )
            .table_valued("first", "second")
            .render_derived(name=f"{name}_wanted")
        )
        found = (
            select(*columns)
            .where(first == unnested.c.first, second == unnested.c.second)
            .limit(1)
            .lateral(f"{name}_found")
        )
        listed = func.json_each(bindparam(f"{name}_pairs")).table_valued("value").alias()
        self.statements: dict[str, Select[Any]] = {
            "postgresql": select(*found.c).select_from(unnested).join(found, true()),
            "sqlite": select(*columns).join_from(
                listed,
                first.class_,
                and_(
                    first == func.json_extract(listed.c.value, "$[0]"),
                    second == func.json_extract(listed.c.value, "$[1]"),
                ),
            ),
        }

    def params(self, session: AsyncSession, pairs: Collection[tuple[Any, Any]]) -> dict[str, Any]:
        dialect = session.get_bind().dialect
        if dialect.name == "postgresql":
            return {
                f"{self.name}_firsts": [a for a, _ in pairs],
                f"{self.name}_seconds": [b for _, b in pairs],
            }
        return {f"{self.name}_pairs": json_rows(session, self.types, pairs)}


class RowsInsert:
    """A group's new rows of one table in one statement however many, compiled once per set of
    columns. On PostgreSQL the rows go as one array per column, unnested: an executemany is a
    Bind and an Execute per row, each starting PostgreSQL's executor again, and for a web-form
    group of 64 that cost more of its CPU than the rows themselves (`bench.intake`,
    docs/architecture.md). On SQLite, in the same process, an executemany is cheap and stays.
    Rows are inserted in the order given (a group's rows in key order wait for another's in the
    same order) and must all carry the same keys; a column they leave out gets its Python-side
    default per row, as an executemany would give it."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.statements: dict[tuple[str, ...], Insert] = {}
        # A JSON column's values go as text: an array of lists would be read as two dimensions.
        # (With whether None is SQL's NULL, as the column's type says, or JSON's null.)
        self.json_keys = {c.key: c.type.none_as_null for c in table.c if isinstance(c.type, JSON)}

    async def __call__(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if dialect_of(session) != "postgresql":
            await execute_core(session, insert(self.table), list(rows))
            return
        params = {key: [row[key] for row in rows] for key in rows[0]}
        for column in self.table.c:
            default = column.default
            if column.key in params or default is None:
                continue
            if default.is_callable:
                params[column.key] = [default.arg(None) for _ in rows]  # type: ignore[attr-defined]
            elif default.is_scalar:
                params[column.key] = [default.arg] * len(rows)  # type: ignore[attr-defined]
            else:  # a SQL expression or a sequence: left to the executemany
                await execute_core(session, insert(self.table), list(rows))
                return
        for key, as_null in self.json_keys.items():  # as text, cast back in the statement
            if key in params:
                params[key] = [
                    None if value is None and as_null else json.dumps(value)
                    for value in params[key]
                ]
        await execute_core(session, self._statement(tuple(params)), params)

    def _statement(self, keys: tuple[str, ...]) -> Insert:
        statement = self.statements.get(keys)
        if statement is None:
            columns = [self.table.c[key] for key in keys]
            rows = (
                func.unnest(
                    *(
                        bindparam(c.key, type_=postgresql.ARRAY(self._carried(c.key, c.type)))
                        for c in columns
                    )
                )
                .table_valued(*keys)
                .render_derived(name="rows")
            )
            values = [
                cast(rows.c[c.key], c.type) if c.key in self.json_keys else rows.c[c.key]
                for c in columns
            ]
            statement = insert(self.table).from_select(keys, select(*values))
            self.statements[keys] = statement
        return statement

    def _carried(self, key: str, kind: TypeEngine[Any]) -> TypeEngine[Any]:
        return Text() if key in self.json_keys else kind


def json_rows(
    session: AsyncSession, types: Sequence[TypeEngine[Any]], rows: Iterable[Sequence[Any]]
) -> str:
    """Rows for SQLite's `json_each` (one parameter, however many rows, so the statement is
    compiled once): each value as its column holds it (a UUID as SQLite's hex text), so that SQL
    compares them with the columns."""
    dialect = session.get_bind().dialect
    stored: list[Callable[[Any], Any]] = [kind.bind_processor(dialect) or _as_is for kind in types]
    return json.dumps(
        [[store(value) for store, value in zip(stored, row, strict=True)] for row in rows]
    )


def _as_is(value: Any) -> Any:
    return value
