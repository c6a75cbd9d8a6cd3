"""Write the gold-label file newsclf-dataset needs for BBC News (``configs/source/bbc.yaml``).

The BBC CSVs have no id column, so newsclf derives each article's id from its text
(``newsclf.articles.content_id``, as ``source.id_column=null`` does); this writes those ids with
their ``category`` for train.csv and val.csv:

    python benchmarks/bbc_labels.py data/bbc-labels.csv [../shared/data/bbc-news]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pandas as pd

from newsclf.articles import content_id

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bbc-news"
FILES = ("train.csv", "val.csv")  # test.csv stays out: it is only for reporting


def write_labels(out: Path, data: Path = DEFAULT_DATA) -> int:
    """Write ``article_id,category`` rows (one per distinct text); returns the row count."""
    rows: dict[str, str] = {}
    for name in FILES:
        frame = pd.read_csv(data / name, dtype=str, keep_default_na=False)
        for text, category in zip(frame["text"], frame["category"], strict=True):
            # title_column is null in the source config, so the id is content_id("", text)
            rows.setdefault(content_id("", text), category)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["article_id", "category"])
        writer.writerows(rows.items())
    tmp.replace(out)
    return len(rows)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    data = Path(sys.argv[2]) if len(sys.argv) == 3 else DEFAULT_DATA
    print(f"{write_labels(Path(sys.argv[1]), data)} labels written to {sys.argv[1]}")
