"""An Excel workbook of the coded corpus, for mixed-methods work.

Sheets (Danish, for the users): the case × code and source × code matrices
(how many excerpts of each case or source carry each code, from the final
codings), the coded excerpts one per row with a column per code saying where
its coding came from, the codes, and what the export contains. By default
every final coding counts, whatever its origin; the excerpt sheet says which
origin each one has, so a user can filter, and ``origins`` narrows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from casebase import __version__
from casebase.ingest import segment
from casebase.store import database
from casebase.files import atomic_path

ORIGINS = database.ORIGINS
ORIGIN_LABELS = {"human": "menneske", "model": "model", "rule": "regel"}
SHEET_CASES = "Case × kode"
SHEET_SOURCES = "Kilde × kode"
SHEET_EXCERPTS = "Kodede uddrag"
SHEET_CODES = "Koder"
SHEET_ABOUT = "Om eksporten"
# The long texts (purpose, intervention, learning) stay out of the matrix sheet.
CASE_COLUMNS = (
    ("id", "Case-id"),
    ("title", "Titel"),
    ("source_id", "Kilde"),
    *((c.name, c.label) for c in segment.CASE_COLUMNS if c.name not in ("purpose", "intervention", "learning")),
    ("excerpt_count", "Uddrag"),
)
SOURCE_COLUMNS = (
    ("id", "Kilde-id"),
    ("title", "Titel"),
    ("publisher", "Udgiver"),
    ("year", "År"),
    ("kind", "Type"),
    ("excerpt_count", "Uddrag"),
)
EXCERPT_COLUMNS = (
    ("id", "Uddrag-id"),
    ("source_id", "Kilde"),
    ("case_id", "Case-id"),
    ("case_title", "Case"),
    ("page", "Side"),
    ("section", "Afsnit"),
    ("kind", "Type"),
    ("text", "Tekst"),
    ("labels", "Koder"),
    ("code_ids", "Kode-id'er"),
    ("origins", "Oprindelse"),
    ("by", "Kodet af"),
)
EXCEL_CELL_LIMIT = 32767


@dataclass
class WorkbookReport:
    path: Path
    origins: tuple[str, ...]
    cases: int = 0
    sources: int = 0
    excerpts: int = 0
    codings: int = 0
    sheets: list[str] = field(default_factory=list)


def _value(value):
    """A cell value Excel shows as written: no control characters, within the cell limit."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if len(value) > EXCEL_CELL_LIMIT:
            value = value[: EXCEL_CELL_LIMIT - 1] + "…"
    return value


def _append(sheet, values) -> None:
    sheet.append([_value(v) for v in values])
    for cell in sheet[sheet.max_row]:
        # Text that starts with '=' is an excerpt, not a formula to evaluate.
        if cell.data_type == "f":
            cell.data_type = "s"


def _table(sheet, header: list[str], rows, widths: dict[int, float] | None = None, wrap: set[int] = frozenset()) -> None:
    _append(sheet, header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        _append(sheet, row)
    sheet.freeze_panes = "B2"
    if sheet.max_row > 1:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{sheet.max_row}"
    for index, title in enumerate(header, start=1):
        width = (widths or {}).get(index) or min(max(len(str(title)) + 2, 8), 40)
        sheet.column_dimensions[get_column_letter(index)].width = width
    for index in wrap:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            cell.alignment = Alignment(wrap_text=True, vertical="top")


def _code_headers(codes: list[dict]) -> list[str]:
    """Danish labels as column titles; an id is added where two codes share a label."""
    counts: dict[str, int] = {}
    for code in codes:
        counts[code["label_da"]] = counts.get(code["label_da"], 0) + 1
    return [code["label_da"] if counts[code["label_da"]] == 1 else f"{code['label_da']} ({code['id']})" for code in codes]


def export_xlsx(db_path: Path, out: Path, origins=ORIGINS) -> WorkbookReport:
    origins = tuple(o for o in ORIGINS if o in origins)
    db = database.open_built(db_path)
    try:
        workbook, report = build_workbook(db, origins)
    finally:
        db.conn.close()
    with atomic_path(out) as tmp:
        workbook.save(tmp)
    report.path = Path(out)
    return report


def build_workbook(db, origins=ORIGINS) -> tuple[Workbook, WorkbookReport]:
    report = WorkbookReport(path=Path(), origins=tuple(origins))
    codes = list(db.query("select id, label_da, label_en, parent_id, colour, definition from codes order by position"))
    code_ids = [code["id"] for code in codes]
    labels = {code["id"]: code["label_da"] for code in codes}
    headers = _code_headers(codes)
    chosen = [json.dumps(list(origins))]
    codings = list(
        db.query(
            "select c.excerpt_id, c.code_id, c.origin, c.coder, c.model_run, e.source_id, e.case_id"
            f" from codings c join excerpts e on e.id = c.excerpt_id where c.origin in {database.ORIGIN_LIST}",
            chosen,
        )
    )
    report.codings = len(codings)
    by_case: dict[str, dict[str, int]] = {}
    by_source: dict[str, dict[str, int]] = {}
    by_excerpt: dict[str, dict[str, dict]] = {}
    for row in codings:
        if row["case_id"]:
            counts = by_case.setdefault(row["case_id"], {})
            counts[row["code_id"]] = counts.get(row["code_id"], 0) + 1
        counts = by_source.setdefault(row["source_id"], {})
        counts[row["code_id"]] = counts.get(row["code_id"], 0) + 1
        by_excerpt.setdefault(row["excerpt_id"], {})[row["code_id"]] = row

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET_CASES
    cases = list(db.query("select * from cases order by rowid"))
    _table(
        sheet,
        [title for _, title in CASE_COLUMNS] + headers,
        ([case[col] for col, _ in CASE_COLUMNS] + [by_case.get(case["id"], {}).get(c, 0) for c in code_ids] for case in cases),
        widths={1: 28, 2: 40},
    )
    report.cases = len(cases)

    sheet = workbook.create_sheet(SHEET_SOURCES)
    sources = list(db.query("select * from sources order by rowid"))
    _table(
        sheet,
        [title for _, title in SOURCE_COLUMNS] + headers,
        (
            [source[col] for col, _ in SOURCE_COLUMNS] + [by_source.get(source["id"], {}).get(c, 0) for c in code_ids]
            for source in sources
        ),
        widths={1: 18, 2: 50, 3: 30},
    )
    report.sources = len(sources)

    sheet = workbook.create_sheet(SHEET_EXCERPTS)
    titles = {case["id"]: case["title"] for case in cases}
    source_order = {source["id"]: i for i, source in enumerate(sources)}
    excerpts = sorted(
        db.query(
            "select id, source_id, seq, case_id, page, section, kind, text from excerpts"
            f" where id in (select excerpt_id from codings where origin in {database.ORIGIN_LIST})",
            chosen,
        ),
        key=lambda e: (source_order.get(e["source_id"], len(source_order)), e["seq"]),
    )

    def excerpt_row(excerpt: dict) -> list:
        coded = by_excerpt.get(excerpt["id"], {})
        present = [c for c in code_ids if c in coded]
        by = sorted({coded[c]["coder"] or coded[c]["model_run"] or "regler" for c in present})
        values = {
            **excerpt,
            "case_title": titles.get(excerpt["case_id"]),
            "labels": "; ".join(labels[c] for c in present),
            "code_ids": " ".join(present),
            "origins": ", ".join(ORIGIN_LABELS[o] for o in ORIGINS if any(coded[c]["origin"] == o for c in present)),
            "by": ", ".join(by),
        }
        return [values[col] for col, _ in EXCERPT_COLUMNS] + [
            ORIGIN_LABELS[coded[c]["origin"]] if c in coded else None for c in code_ids
        ]

    _table(
        sheet,
        [title for _, title in EXCERPT_COLUMNS] + headers,
        (excerpt_row(excerpt) for excerpt in excerpts),
        widths={1: 24, 2: 14, 3: 24, 4: 30, 8: 80, 9: 30},
        wrap={8},
    )
    report.excerpts = len(excerpts)

    sheet = workbook.create_sheet(SHEET_CODES)
    _table(
        sheet,
        ["Kode-id", "Kode", "Kode (engelsk)", "Overkode", "Farve", "Definition"],
        ([c["id"], c["label_da"], c["label_en"], c["parent_id"], c["colour"], c["definition"]] for c in codes),
        widths={1: 24, 2: 30, 3: 30, 4: 20, 6: 80},
        wrap={6},
    )

    sheet = workbook.create_sheet(SHEET_ABOUT)
    info = {row["key"]: row["value"] for row in db.query("select key, value from build_info")} if db["build_info"].exists() else {}
    about = [
        ("Eksporteret fra", f"casebase {__version__}"),
        ("Kodebogsversion", info.get("codebook_version", "")),
        ("Modelkørsel", info.get("model_run", "")),
        ("Databasen bygget", info.get("built_at", "")),
        ("Kodninger med oprindelse", ", ".join(ORIGIN_LABELS[o] for o in origins)),
        (
            "Optælling",
            "Tallene i matricerne er antal uddrag, der bærer koden (de endelige kodninger: en menneskelig"
            " beslutning går forud for model og regler; en underkode medfører sin overkode).",
        ),
    ]
    _table(sheet, ["Felt", "Værdi"], about, widths={1: 28, 2: 100}, wrap={2})
    report.sheets = list(workbook.sheetnames)
    return workbook, report
