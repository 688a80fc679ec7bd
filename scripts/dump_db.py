"""Print a built database as canonical text: every table's rows in primary-key order.

Used to show that two builds are the same (e.g. before and after a refactor):
    python scripts/dump_db.py db/casebase.db > a.txt; ...; diff a.txt b.txt
Columns that record when a build ran, and the fingerprint of the code that ran it, are left out;
human decisions keep theirs, since those come from the coders' files.
"""

import json
import sqlite3
import sys

VOLATILE = {("model_runs", "created"), ("agreement", "computed")}


def dump(path: str) -> None:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = [r[0] for r in db.execute("select name from sqlite_master where type='table' order by name")]
    for table in tables:
        if table.startswith("excerpts_fts") or table.startswith("sqlite_"):
            continue
        columns = [r[1] for r in db.execute(f'pragma table_info("{table}")')]
        print(f"## {table} ({', '.join(columns)})")
        rows = []
        for row in db.execute(f'select * from "{table}"'):
            item = dict(zip(columns, row))
            if table == "build_info" and item.get("key") in {"built_at", "inputs_fingerprint"}:
                continue
            for t, c in VOLATILE:
                if t == table and c in item:
                    item[c] = None
            rows.append(json.dumps(item, ensure_ascii=False, sort_keys=True))
        for line in sorted(rows):
            print(line)


if __name__ == "__main__":
    dump(sys.argv[1])
