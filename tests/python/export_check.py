#!/usr/bin/env python3
"""Checks a file written by `tickwire export` against the rows it should hold, reading it the way
users do: with pyarrow (what pandas and polars use for Parquet) for `.parquet`, with pyarrow's CSV
reader, given the documented column types, for `.csv`.

    export_check.py FILE EXPECTED_JSON

EXPECTED_JSON is a list of objects, one per row in file order, column name -> value: prices as
decimal strings ("1418.05"), times as integers of ns since the Unix epoch, other integers as
integers, greeks as numbers, names as strings, null as null. Every object has every column (key
order does not matter: serde_json sorts keys).

The column order and types are decided here as docs/storage.md states them, independently of the
Rust column list, so a column missing, moved or written with the wrong type fails this check. Prints OK and exits
0 when every cell matches; otherwise prints each mismatch (up to 50) and exits 1 (2 for bad usage).
"""

import json
import math
import re
import sys
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

TZ = "Asia/Kolkata"
# The documented order: the tick's fields, then the book (bids level 1..5, then asks 1..5).
HEAD = (
    "exchange symbol seq exchange_ts recv_ts ltp last_qty avg_price volume total_buy_qty "
    "total_sell_qty open high low close oi oi_day_high oi_day_low iv delta gamma theta vega rho"
).split()
DEPTH = [f"{side}_{what}_{n}" for side in ("bid", "ask") for n in range(1, 6)
         for what in ("price", "qty", "orders")]
ORDER = HEAD + DEPTH
TEXT = {"exchange", "symbol"}
TIME = {"exchange_ts", "recv_ts"}
FLOAT = {"iv", "delta", "gamma", "theta", "vega", "rho"}
PRICE_RE = re.compile(r"^(ltp|avg_price|open|high|low|close|(bid|ask)_price_[1-5])$")
NOT_NULL = {"exchange", "symbol", "seq", "recv_ts"}
# RFC 3339 with all nine fraction digits and IST's explicit offset, as docs/storage.md promises.
CSV_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+05:30$")
CSV_PRICE_RE = re.compile(r"^-?\d+\.\d{1,7}$")
MAX_REPORTED = 50


def kind(name):
    if name in TEXT:
        return "text"
    if name in TIME:
        return "time"
    if name in FLOAT:
        return "float"
    if PRICE_RE.match(name):
        return "price"
    return "int"


ARROW_TYPE = {
    "text": pa.string(),
    "int": pa.int64(),
    "price": pa.decimal128(19, 7),
    "float": pa.float64(),
    "time": pa.timestamp("ns", tz=TZ),
}


class Problems:
    def __init__(self):
        self.items = []

    def add(self, msg):
        self.items.append(msg)

    def fail_if_any(self):
        if not self.items:
            return
        for msg in self.items[:MAX_REPORTED]:
            print(f"MISMATCH: {msg}")
        if len(self.items) > MAX_REPORTED:
            print(f"... and {len(self.items) - MAX_REPORTED} more")
        print(f"FAILED: {len(self.items)} problem(s)")
        sys.exit(1)


def read_parquet(path, problems):
    table = pq.read_table(path)
    for field in table.schema:
        want = ARROW_TYPE[kind(field.name)]
        if field.type != want:
            problems.add(f"column {field.name}: Parquet type {field.type}, expected {want}")
        if field.nullable == (field.name in NOT_NULL):
            problems.add(
                f"column {field.name}: nullable={field.nullable}, expected {field.name not in NOT_NULL}"
            )
    return table


def read_csv(path, problems):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split(",")
    types = {n: ARROW_TYPE[kind(n)] for n in header}
    opts = dict(strings_can_be_null=False, quoted_strings_can_be_null=False)
    table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(column_types=types, **opts))
    # The text itself: times in IST with an explicit offset, prices as plain decimals.
    raw = pcsv.read_csv(
        path,
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in header}, **opts),
    )
    for name in header:
        pattern = {"time": CSV_TIME_RE, "price": CSV_PRICE_RE}.get(kind(name))
        if pattern is None:
            continue
        for i, text in enumerate(raw.column(name).to_pylist()):
            if text != "" and not pattern.match(text):
                problems.add(f"row {i} column {name}: CSV text {text!r} is not in the documented form")
    return table


def same(kind_, got, want):
    if want is None or got is None:
        return got is None and want is None
    if kind_ == "price":
        return isinstance(got, Decimal) and isinstance(want, str) and got == Decimal(want)
    if kind_ == "float":
        got, want = float(got), float(want)
        if math.isnan(want):
            return math.isnan(got)
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    if kind_ in ("int", "time"):
        return isinstance(want, int) and not isinstance(want, bool) and got == want
    return got == want


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    if not isinstance(expected, list) or not expected or not isinstance(expected[0], dict):
        print("EXPECTED_JSON must be a non-empty list of objects")
        sys.exit(2)

    problems = Problems()
    if path.endswith(".parquet"):
        table = read_parquet(path, problems)
    elif path.endswith(".csv"):
        table = read_csv(path, problems)
    else:
        print(f"{path}: neither .parquet nor .csv")
        sys.exit(2)

    want_cols = ORDER
    if table.column_names != want_cols:
        problems.add(f"columns {table.column_names}, expected {want_cols}")
        problems.fail_if_any()
    for i, row in enumerate(expected):
        if set(row.keys()) != set(want_cols):
            problems.add(f"expected row {i}: keys differ from the columns: "
                         f"{sorted(set(row.keys()) ^ set(want_cols))}")
    problems.fail_if_any()
    if table.num_rows != len(expected):
        problems.add(f"{table.num_rows} rows, expected {len(expected)}")

    for name in want_cols:
        k = kind(name)
        col = table.column(name)
        # Times compare as ns integers: the instant, whatever zone it is shown in.
        got_values = col.cast(pa.int64()).to_pylist() if k == "time" else col.to_pylist()
        for i, row in enumerate(expected[: table.num_rows]):
            if not same(k, got_values[i], row[name]):
                problems.add(f"row {i} column {name}: got {got_values[i]!r}, expected {row[name]!r}")

    problems.fail_if_any()
    print(f"OK: {table.num_rows} rows x {len(want_cols)} columns match ({path})")


if __name__ == "__main__":
    main()
