"""A facet for the JSON lists whose items never repeat within a row (an excerpt's or a
case's codes, an excerpt's origins), registered as Datasette facet type ``set``.

Datasette's array facet counts each item once per row by taking the distinct
(item, whole row) pairs: right for any list, but every row is carried whole (an
excerpt's text and lemmas) and sorted, which took 220 ms a facet on an excerpt page of
200,000 rows. casebase writes these lists without repeats (store.summaries), so an
item's count is simply the rows that list it: 29 ms there. The results, the links and
the filter they set (``codes__arraycontains``) are the array facet's.
"""

from __future__ import annotations

import sqlite3

from datasette.database import QueryInterrupted
from datasette.facets import ArrayFacet
from datasette.utils import escape_sqlite, path_with_added_args, path_with_removed_args


class SetFacet(ArrayFacet):
    type = "set"

    async def facet_results(self):
        results, timed_out = [], []
        size = self.get_facet_size()
        chosen = self.get_querystring_pairs()
        for source_and_config in self.get_configs():
            config = source_and_config["config"]
            column = config.get("column") or config["simple"]
            sql = f"""
                select j.value as value, count(*) as count
                from (select {escape_sqlite(column)} as list from ({self.sql})) rows
                join json_each(rows.list) j
                group by j.value
                order by count(*) desc, j.value
                limit {size + 1}
            """
            try:
                rows = await self.ds.execute(
                    self.database, sql, self.params, truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"), log_sql_errors=False,
                )
            except QueryInterrupted:
                timed_out.append(column)
                continue
            except sqlite3.OperationalError:
                continue  # asked (?_facet_set=) of a column that holds no JSON lists, or none at all
            values = []
            for row in rows.rows[:size]:
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
