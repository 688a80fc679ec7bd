"""Datasette's own pages in Danish.

casebase overrides Datasette's templates for the database, table, row and query
pages (and their partials, the footer and the breadcrumbs) with Danish copies of
the same markup; what those copies cannot say with a literal string comes from
here, as one template variable, ``casebase_chrome``:

- Danish numbers and row counts (``2.324 rækker``);
- Danish names for the filter operators and a Danish description of the rows
  shown (Datasette builds ``human_description_en`` in Python, in English);
- the tables' Danish titles from metadata.yml (breadcrumbs, titles, row pages);
- codes by their Danish label as coloured chips (facets, filter descriptions),
  from the served database's ``codes`` table;
- where the licence and source lines link to.
"""

from __future__ import annotations

import json

from markupsafe import Markup

from casebase.publish.web import public_pages

# The views that show codes in facets and filter descriptions; every other page
# (the front page, casebase's own pages, errors) gets the names and the footer's
# links without a query.
CODE_VIEWS = ("database", "table", "row", "query")

# Columns that hold code ids: ``codes`` is a JSON array (faceted as an array),
# ``code_id`` a single id; both are shown by the code's Danish label.
CODE_COLUMNS = ("codes", "code_id")

# Datasette's filter operators (datasette.filters.Filters) in Danish.
LOOKUPS_DA = {
    "exact": "=",
    "not": "≠",
    "contains": "indeholder",
    "endswith": "slutter med",
    "startswith": "begynder med",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "like": "ligner (like)",
    "notlike": "ligner ikke (not like)",
    "glob": "mønster (glob)",
    "in": "er en af",
    "notin": "er ingen af",
    "arraycontains": "listen indeholder",
    "arraynotcontains": "listen indeholder ikke",
    "date": "dato",
    "isnull": "mangler (null)",
    "notnull": "findes (ikke null)",
    "isblank": "er tom",
    "notblank": "er ikke tom",
}

# The operators whose value is a code id in the description ("codes contains Walk-and-talk").
_CODE_VALUE_LOOKUPS = ("exact", "not", "arraycontains", "arraynotcontains")

FACET_TYPES_DA = {"array": "liste", "set": "liste", "date": "dato"}


def number(value) -> str:
    """An integer the Danish way: 2.324."""
    return f"{int(value):,}".replace(",", ".")


def decimal(value, digits: int = 1) -> str:
    """A decimal number the Danish way: 40,9."""
    return f"{float(value):,.{digits}f}".replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def rows(count) -> str:
    """'1 række', '2.324 rækker'."""
    return f"{number(count)} {'række' if count == 1 else 'rækker'}"


class Chrome:
    """What the Danish templates ask for, for one page."""

    def __init__(self, datasette, database: str | None, codes: dict[str, dict]):
        self._datasette = datasette
        self.database = database
        self.codes = codes
        self.number = number
        self.decimal = decimal
        self.rows = rows

    # --- names -----------------------------------------------------------------

    def database_title(self, database: str | None = None) -> str:
        name = database or self.database
        if not name:
            return ""
        return self._datasette.metadata("title", database=name) or name

    def table_title(self, table: str, database: str | None = None) -> str:
        name = database or self.database
        if not name:
            return table
        return self._datasette.table_metadata(name, table).get("title") or table

    def crumb_label(self, item: dict) -> str:
        """Datasette's breadcrumb labels ('home', a database's and a table's
        name) as the names users read elsewhere on the pages."""
        if item.get("href") == self._datasette.urls.instance() and item.get("label") == "home":
            return "Forside"
        name = self.database
        if name and item.get("href") == self._datasette.urls.database(name):
            return self.database_title(name)
        if name and item.get("href", "").startswith(self._datasette.urls.database(name) + "/"):
            return self.table_title(item.get("label", ""), name)
        return item.get("label", "")

    def row_title(self, columns, row, label_column: str | None, pks) -> str:
        """A row's name: its label column (a source's or a case's title) when the
        table has one, else its primary key."""
        values = dict(zip(columns, row)) if row is not None else {}
        label = values.get(label_column) if label_column else None
        return str(label) if label not in (None, "") else ", ".join(str(pk) for pk in pks)

    # --- filters and facets ----------------------------------------------------

    def lookup(self, key: str, display: str) -> str:
        return LOOKUPS_DA.get(key, display)

    def facet_type(self, facet_type: str) -> str:
        return FACET_TYPES_DA.get(facet_type, facet_type)

    def code_label(self, column: str, value) -> str | None:
        if column in CODE_COLUMNS and isinstance(value, str) and value in self.codes:
            return self.codes[value]["label_da"]
        return None

    def code_chip(self, column: str, value, href: str | None = None) -> Markup | None:
        """A code's chip (its Danish label in its colour) for a value of a code
        column; None for anything else, so the template shows the value as it is."""
        if self.code_label(column, value) is None:
            return None
        return public_pages.chip(self.codes[value], href)

    def describe(self, filters, request, supports_search: bool = False, table_metadata=None) -> str:
        """The rows a table page shows, in Danish: what Datasette's
        ``human_description_en`` says (search, _through, the column filters, the
        sort order asked for or configured), with codes by their label."""
        bits = []
        args = request.args if request is not None else {}
        # As Datasette's table view decides it: the page's template context has
        # the primary key as ``sort`` when nothing was asked for.
        sort, sort_desc = args.get("_sort"), args.get("_sort_desc")
        if not sort and not sort_desc:
            sort, sort_desc = (table_metadata or {}).get("sort"), (table_metadata or {}).get("sort_desc")
        if supports_search:
            for key in args:
                if key == "_search":
                    bits.append(f'søgningen matcher "{args.get(key)}"')
                elif key.startswith("_search_"):
                    bits.append(f'{key[len("_search_"):]} matcher "{args.get(key)}"')
        for through in args.getlist("_through") if hasattr(args, "getlist") else []:
            try:
                data = json.loads(through)
                bits.append(f'{data["table"]}.{data["column"]} = "{data["value"]}"')
            except (ValueError, KeyError, TypeError):
                continue
        for column, lookup, value in filters.selections() if filters is not None else []:
            if lookup not in LOOKUPS_DA:
                continue
            if lookup in ("isnull", "notnull", "isblank", "notblank"):
                bits.append(f"{column} {LOOKUPS_DA[lookup]}")
                continue
            label = self.code_label(column, value) if lookup in _CODE_VALUE_LOOKUPS else None
            op = "indeholder" if lookup == "arraycontains" else "indeholder ikke" if lookup == "arraynotcontains" else LOOKUPS_DA[lookup]
            shown = value if str(value).isdigit() and lookup in ("exact", "not", "gt", "gte", "lt", "lte") else f'"{label or value}"'
            bits.append(f"{column} {op} {shown}")
        text = ""
        if bits:
            text = "hvor " + (", ".join(bits[:-1]) + " og " + bits[-1] if len(bits) > 1 else bits[0])
        if sort or sort_desc:
            text = " ".join(b for b in (text, f"sorteret efter {sort or sort_desc}{' faldende' if sort_desc else ''}") if b)
        return text

    # --- the licence and source lines -------------------------------------------

    def credits(self, metadata=None) -> dict:
        """Licence, source and about for the footer: the page's own metadata where
        it has them, else the instance's, so every page carries the same line
        (Datasette's views fill these in on some pages only)."""
        own = metadata if isinstance(metadata, dict) else {}
        return {
            key: own.get(key) or self._datasette.metadata(key)
            for key in ("license", "license_url", "source", "source_url", "about", "about_url")
        }

    def sources_url(self) -> str | None:
        """The sources table: each source with its publisher, its rights and its
        address, which is what 'data source' and 'licence' point a reader to."""
        name = public_pages.database_name(self._datasette)
        if name is None:
            return None
        return self._datasette.urls.table(name, "sources")

    def licences_url(self) -> str | None:
        url = self.sources_url()
        return url and url + "?_col=title&_col=publisher&_col=year&_col=licence&_col=url"


def extra_template_vars(view_name, database, datasette):
    """``casebase_chrome`` for every page (the footer and the breadcrumbs are on
    all of them), as an awaitable dict."""

    async def inner():
        name = database or public_pages.database_name(datasette)
        codes = {}
        if view_name in CODE_VIEWS and name and name in datasette.databases:
            codes = await public_pages._codes(datasette.get_database(name))
        return {"casebase_chrome": Chrome(datasette, name, codes)}

    return inner()
