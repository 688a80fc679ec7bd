"""casebase's facets: the ``set`` facet type for JSON lists whose items never repeat
within a row, and counts over a whole table read from the build.

Datasette's array facet counts each item once per row by taking the distinct
(item, whole row) pairs: right for any list, but every row is carried whole (an
excerpt's text and lemmas) and sorted, which took 220 ms a facet on an excerpt page of
200,000 rows. casebase writes these lists without repeats (store.summaries), so an
item's count is simply the rows that list it: 29 ms there. The results, the links and
the filter they set (``codes__arraycontains``) are the array facet's.

A table page without a filter or search facets every row of the table: at a million
excerpts the six facets of the excerpt table read it six times (≈ 400 ms). The build
counts them once (``summaries.COUNTED`` into ``facet_counts``, kept up to date by
every save), and both facet types read an unfiltered page's counts from there;
Datasette's column facet is replaced by ``CountedColumnFacet`` for that
(``register_facet_classes``). A filtered page is counted as Datasette counts it.
"""

from __future__ import annotations

import re
import sqlite3

from datasette.database import QueryInterrupted
from datasette.facets import ArrayFacet, ColumnFacet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args

from casebase.store import summaries

_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)


async def precounted(facet, column: str, size: int):
    """The facet's (value, count) rows, most first, from the build's counts of the
    whole table; None when the page is filtered or the column is not counted."""
    counted = summaries.COUNTED.get(facet.table, {}).get(facet.type, ())
    if column not in counted or facet.params or _WHERE.search(facet.sql):
        return None
    try:
        rows = await facet.ds.get_database(facet.database).execute(
            """select value, count from facet_counts where table_name = ? and column_name = ?
               order by count desc, value limit ?""",
            [facet.table, column, size + 1],
        )
    except sqlite3.OperationalError:  # a database built before the counts
        return None
    return rows.rows


class CountedColumnFacet(ColumnFacet):
    """Datasette's column facet; an unfiltered page's counts come from the build."""

    _live = None  # the configs counted as Datasette counts them

    def get_configs(self):
        return self._live if self._live is not None else super().get_configs()

    async def facet_results(self):
        size = self.get_facet_size()
        counted, live = {}, []
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            rows = await precounted(self, column, size)
            if rows is None:
                live.append(source_and_config)
            else:
                counted[column] = (source_and_config["source"], rows)
        self._live = live
        try:
            results, timed_out = await super().facet_results() if live else ([], [])
        finally:
            self._live = None
        qs_pairs = self.get_querystring_pairs()
        for column, (source, rows) in counted.items():
            # As ColumnFacet.facet_results lays its results out.
            shown = rows[:size]
            expanded = await self.ds.expand_foreign_keys(self.database, self.table, column, [row["value"] for row in shown])
            values = []
            for row in shown:
                column_qs = f"{column}__exact" if column.startswith("_") else column
                selected = (column_qs, str(row["value"])) in qs_pairs
                toggle = (
                    path_with_removed_args(self.request, {column_qs: str(row["value"])})
                    if selected
                    else path_with_added_args(self.request, {column_qs: row["value"]})
                )
                values.append({
                    "value": row["value"],
                    "label": expanded.get((column, row["value"]), row["value"]),
                    "count": row["count"],
                    "toggle_url": self.ds.absolute_url(self.request, self.ds.urls.path(toggle)),
                    "selected": selected,
                })
            results.append({
                "name": column,
                "type": self.type,
                "hideable": source != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {"_facet": column})),
                "results": values,
                "truncated": len(rows) > size,
            })
        return results, timed_out


class SetFacet(ArrayFacet):
    type = "set"

    async def facet_results(self):
        results, timed_out = [], []
        size = self.get_facet_size()
        chosen = self.get_querystring_pairs()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            rows = await precounted(self, column, size)
            if rows is None:
                sql = f"""
                    select j.value as value, count(*) as count
                    from (select {escape_sqlite(column)} as list from ({self.sql})) rows
                    join json_each(rows.list) j
                    group by j.value
                    order by count(*) desc, j.value
                    limit {size + 1}
                """
                try:
                    rows = (await self.ds.execute(
                        self.database, sql, self.params, truncate=False,
                        custom_time_limit=self.ds.setting("facet_time_limit_ms"), log_sql_errors=False,
                    )).rows
                except QueryInterrupted:
                    timed_out.append(column)
                    continue
                except sqlite3.OperationalError:
                    continue  # asked (?_facet_set=) of a column that holds no JSON lists, or none at all
            values = []
            for row in rows[:size]:
                value = str(row["value"])
                pair = (f"{column}__arraycontains", value)
                selected = pair in chosen
                toggle = (path_with_removed_args if selected else path_with_added_args)(self.request, {pair[0]: value})
                values.append({
                    "value": value, "label": value, "count": row["count"],
                    "toggle_url": self.ds.absolute_url(self.request, toggle), "selected": selected,
                })
            results.append({
                "name": column,
                "type": self.type,
                "results": values,
                "hideable": source_and_config["source"] != "metadata",
                "toggle_url": self.ds.urls.path(path_with_removed_args(self.request, {f"_facet_{self.type}": column})),
                "truncated": len(rows) > size,
            })
        return results, timed_out
