"""A page of rows newest first across several businesses, read one business at a time.

With the businesses as an IN list PostgreSQL reads every row of them to sort them for a page;
a LATERAL per business walks an index on (business, time, id) backwards and stops at the page,
and the businesses' pages are then merged. The API's list of leads and the owner's portal read
their pages this way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, true
from sqlalchemy.sql.expression import Subquery


def newest_per_business(
    ids: Select[Any],
    business: Any,
    at: Any,
    row_id: Any,
    visible: Subquery,
    *,
    limit: int,
    offset: int = 0,
) -> Select[Any]:
    """The ids of `ids` (a statement of `row_id` with its filters) newest first by (`at`,
    `row_id`), within the businesses `visible` lists (its first column), `offset` on and
    `limit` of them."""
    per_business = (
        ids.add_columns(at)
        .where(business == next(iter(visible.c)))
        .order_by(at.desc(), row_id.desc())
        .limit(offset + limit)
        .lateral("per_business")
    )
    newest = per_business.c[at.key]
    chosen = per_business.c[row_id.key]
    return (
        select(chosen)
        .select_from(visible)
        .join(per_business, true())
        .order_by(newest.desc(), chosen.desc())
        .offset(offset)
        .limit(limit)
    )
