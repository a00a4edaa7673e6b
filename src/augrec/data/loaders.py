"""Loaders for the formats users bring, each producing a validated `Dataset`.

Formats (auto-detected from the file):
- `augrec`: our interactions schema as CSV/TSV or parquet
  (`user_id,item_id,timestamp[,event_type,weight]`), with an optional items table beside it
  (`items.csv` / `items.parquet`; optional columns `category`, `brand`, `price`, `title`).
- `amazon-seq`: the 5-core sequence format, `user item item ...` per line, with the optional
  position-aligned `<stem>_time_org_rank.txt`, `<stem>_item2attributes.json` and
  `<stem>_titles.tsv` (`item_id<TAB>...<TAB>title`, a header naming both) beside it.

Any format takes an explicit titles file (`titles=`), which wins over one found beside the
data; its titles fill the items table's `title` column.
- `diginetica`: the CIKM Cup 2016 purchases log (`sessionId;userId;timeframe;eventdate;...`),
  with `product-categories.csv` beside it.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pandas as pd

from augrec.data.schema import Dataset, normalise_interactions
from augrec.data.validate import validate_interactions, validate_items
from augrec.errors import DataValidationError, Problem

log = logging.getLogger(__name__)

FORMATS = ("augrec", "amazon-seq", "diginetica")


_SNIFF_BYTES = 1 << 16
_PARQUET_MAGIC = b"PAR1"


def _unreadable(path: Path, what: str) -> DataValidationError:
    return DataValidationError(str(path), [Problem("unreadable", "", 0, what)])


def check_readable(path: Path) -> None:
    """Refuse, with a message naming the file and the fault, input that no loader can read.

    Parquet must carry its magic bytes at both ends (a truncated copy lacks the footer);
    text formats must be plain UTF-8: gzip, zip, UTF-16 and other binary input is named as such
    instead of surfacing as a decoder traceback.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
        if path.suffix == ".parquet":
            fh.seek(max(size - 4, 0))
            tail = fh.read(4)
    if path.suffix == ".parquet":
        if head[:4] != _PARQUET_MAGIC:
            raise _unreadable(path, "not a parquet file (no PAR1 magic bytes at the start)")
        if tail != _PARQUET_MAGIC or size < 12:
            raise _unreadable(
                path, "parquet file is truncated or corrupt (no PAR1 footer at the end)"
            )
        return
    if head[:2] == b"\x1f\x8b":
        raise _unreadable(path, "gzip-compressed; decompress it first (gunzip)")
    if head[:4] == b"PK\x03\x04":
        raise _unreadable(path, "a zip archive; extract the data file from it first")
    if head[:4] == _PARQUET_MAGIC:
        raise _unreadable(path, "a parquet file; give it the .parquet suffix")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _unreadable(path, "UTF-16 text; save it as UTF-8")
    if b"\x00" in head:
        raise _unreadable(path, "binary data (NUL bytes), not a text file")
    try:
        # A multi-byte character cut at the end of the sniffed block is not an error.
        head.decode("utf-8") if len(head) < _SNIFF_BYTES else head[:-4].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unreadable(
            path, f"not UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start})"
        ) from None


def detect_format(path: Path) -> str:
    """Guess the format from the suffix and the first line."""
    if path.suffix == ".parquet":
        return "augrec"
    with path.open("r", errors="replace") as fh:
        first = fh.readline().strip()
    if first.lower().startswith("sessionid;userid"):
        return "diginetica"
    tokens = first.split()
    if path.suffix == ".txt" or (tokens and all(t.lstrip("-").isdigit() for t in tokens)):
        return "amazon-seq"
    return "augrec"


def load_dataset(
    path: str | Path, fmt: str | None = None, titles: str | Path | None = None
) -> Dataset:
    """Load and validate a dataset file; raises `DataValidationError` on a bad file.

    Args:
        path: The interactions file (or a directory holding `interactions.*`): a local path,
            or a URI (`s3://bucket/data/beauty`) fetched once into the local cache
            (`augrec.storage.local_copy`) and read from there.
        fmt: One of `FORMATS`; detected from the file when None.
        titles: A table with `item_id` and `title` columns (TSV, CSV or parquet) whose
            titles join the items table; default: `<stem>_titles.tsv` beside an Amazon file.
    """
    from augrec import storage

    if storage.is_remote(path):
        try:
            path = storage.local_copy(path)
        except FileNotFoundError as exc:
            raise DataValidationError(
                str(path), [Problem("missing", "--data", 0, f"no such object: {path}")]
            ) from exc
    path = Path(path)
    if not path.exists():
        raise DataValidationError(
            str(path), [Problem("missing", "", 0, "no such file or directory")]
        )
    if path.is_dir():
        candidates = [path / n for n in ("interactions.parquet", "interactions.csv")]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise DataValidationError(
                str(path),
                [
                    Problem(
                        "missing",
                        "",
                        0,
                        "directory has no interactions.parquet or interactions.csv",
                    )
                ],
            )
        path = found[0]
    if path.stat().st_size == 0:
        raise DataValidationError(str(path), [Problem("empty", "", 0, "the file is empty")])
    check_readable(path)
    fmt = fmt or detect_format(path)
    loaders = {
        "augrec": load_augrec,
        "amazon-seq": load_amazon_sequences,
        "diginetica": load_diginetica,
    }
    if fmt not in loaders:
        raise ValueError(f"format: unknown value {fmt!r}; expected one of {list(FORMATS)}")
    try:
        ds = loaders[fmt](path)
    except UnicodeDecodeError as exc:  # past the sniffed block
        raise _unreadable(path, f"not UTF-8 text (at byte {exc.start} of a block)") from None
    if titles is None and fmt == "amazon-seq":
        beside = path.with_name(f"{path.stem}_titles.tsv")
        titles = beside if beside.exists() else None
    if titles is not None:
        _attach_titles(ds, Path(titles))
    log.info("loaded %s", ds.summary())
    return ds


def read_titles(path: Path) -> pd.DataFrame:
    """`item_id, title` from a table with (at least) those columns; ids unique integers."""
    if not path.exists():
        raise DataValidationError(
            str(path), [Problem("missing", "--titles", 0, f"no such file: {path}")]
        )
    if path.suffix == ".tsv":  # titles hold quotes and commas; a TSV field is the raw text
        raw = pd.read_csv(path, sep="\t", dtype=str, quoting=csv.QUOTE_NONE)
    else:
        raw = read_table(path)
    if "title" not in raw.columns:
        raise DataValidationError(
            str(path),
            [Problem("columns", "title", len(raw), f"missing; found {list(raw.columns)}")],
        )
    table = validate_items(raw[[c for c in ("item_id", "title") if c in raw.columns]], str(path))
    table["title"] = table["title"].fillna("").astype(str)
    return table


def _attach_titles(ds: Dataset, path: Path) -> None:
    """Join a titles table into `ds.items` (titles of items not in the log are kept too)."""
    titles = read_titles(path)
    items = ds.items.drop(columns=["title"], errors="ignore")
    ds.items = items.merge(titles, on="item_id", how="outer").astype({"item_id": "int64"})
    ds.items["title"] = ds.items["title"].fillna("")
    ds.files.append(path)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV/TSV (as strings) or parquet table, after `check_readable`."""
    check_readable(path)
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise _unreadable(path, f"parquet file cannot be read: {exc}") from None
    sep = "\t" if path.suffix == ".tsv" else None
    # Strings first: validation, not the CSV parser, decides what a bad value is.
    return pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=True)


def load_augrec(path: Path) -> Dataset:
    """Our schema from CSV/TSV/parquet, plus `items.*` beside it when present."""
    raw = read_table(path)
    df = validate_interactions(raw, str(path))
    items = pd.DataFrame({"item_id": pd.Series(dtype="int64")})
    files = [path]
    for name in ("items.parquet", "items.csv", f"{path.stem}_items.csv"):
        cand = path.with_name(name)
        if cand.exists() and cand != path:
            items = validate_items(read_table(cand), str(cand))
            files.append(cand)
            break
    name = path.parent.name if path.stem == "interactions" else path.stem
    return Dataset(name=name, interactions=normalise_interactions(df), items=items, files=files)


def load_amazon_sequences(path: Path) -> Dataset:
    """Amazon 5-core `user item item ...` lines, with timestamps and attributes when beside it."""
    users: list[str] = []
    items: list[str] = []
    positions: list[int] = []
    with path.open() as fh:
        for line in fh:
            tokens = line.split()
            if not tokens:
                continue
            users.extend([tokens[0]] * (len(tokens) - 1))
            items.extend(tokens[1:])
            positions.extend(range(len(tokens) - 1))
    raw = pd.DataFrame({"user_id": users, "item_id": items, "position": positions})
    files = [path]
    time_path = path.with_name(f"{path.stem}_time_org_rank.txt")
    has_time = time_path.exists()
    if has_time:
        times = _read_aligned_times(time_path, raw)
        raw["timestamp"] = times
        files.append(time_path)
    else:
        # No times: the position is the order, which is all leave-one-out needs.
        raw["timestamp"] = raw["position"]
    # Example rows name the user, which is the line's first token.
    df = validate_interactions(raw, str(path), row_offset=1, check_order=has_time)
    item_attributes: dict[int, list[int]] = {}
    attr_path = path.with_name(f"{path.stem}_item2attributes.json")
    item_table = pd.DataFrame({"item_id": pd.Series(dtype="int64")})
    if attr_path.exists():
        with attr_path.open() as fh:
            item_attributes = {int(k): [int(a) for a in v] for k, v in json.load(fh).items()}
        files.append(attr_path)
        item_table = pd.DataFrame(
            {
                "item_id": list(item_attributes),
                # The first attribute is the brand when it survived the >=5 filter, else the
                # first category element: good enough as a coarse grouping for reports.
                "category": [str(v[0]) if v else None for v in item_attributes.values()],
            }
        ).astype({"item_id": "int64"})
    interactions = normalise_interactions(df)
    return Dataset(
        name=path.stem,
        interactions=interactions,
        items=item_table,
        has_time=has_time,
        source_format="amazon-seq",
        item_attributes=item_attributes,
        files=files,
    )


def _read_aligned_times(time_path: Path, raw: pd.DataFrame) -> list[str]:
    """Read `user ts ts ...` lines that must line up with the sequence file by position."""
    times: list[str] = []
    bad: list[str] = []
    with time_path.open() as fh:
        for line in fh:
            tokens = line.split()
            if tokens:
                times.extend(tokens[1:])
    if len(times) != len(raw):
        bad.append(f"{len(times)} timestamps for {len(raw)} interactions")
        raise DataValidationError(
            str(time_path),
            [
                Problem(
                    "alignment",
                    "timestamp",
                    abs(len(times) - len(raw)),
                    "timestamp file does not line up with the sequence file",
                    bad,
                )
            ],
        )
    return times


def load_diginetica(path: Path) -> Dataset:
    """CIKM Cup 2016 purchases: known users only; event time = eventdate + timeframe (ms)."""
    raw = pd.read_csv(path, sep=";", dtype=str)
    expected = {"sessionId", "userId", "timeframe", "eventdate", "itemId"}
    missing = expected - set(raw.columns)
    if missing:
        raise DataValidationError(
            str(path),
            [
                Problem(
                    "columns",
                    ",".join(sorted(missing)),
                    len(raw),
                    f"not a Diginetica purchases log; found {list(raw.columns)}",
                )
            ],
        )
    anonymous = raw["userId"].isna() | (raw["userId"] == "NA")
    if anonymous.any():
        log.info("diginetica: dropped %d purchases from anonymous sessions", int(anonymous.sum()))
    raw = raw.loc[~anonymous]
    day = pd.to_datetime(raw["eventdate"], errors="coerce", utc=True)
    secs = (day - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    secs = secs + pd.to_numeric(raw["timeframe"], errors="coerce") / 1000.0
    df = pd.DataFrame(
        {
            "user_id": raw["userId"],
            "item_id": raw["itemId"],
            "timestamp": secs.round(),
        }
    )
    # The same item bought twice in one order shows up as repeated rows: one purchase.
    df = df.drop_duplicates()
    df = validate_interactions(df, str(path))
    items = pd.DataFrame({"item_id": pd.Series(dtype="int64")})
    files = [path]
    cat_path = path.with_name("product-categories.csv")
    if cat_path.exists():
        files.append(cat_path)
        cats = pd.read_csv(cat_path, sep=";", dtype=str).rename(
            columns={"itemId": "item_id", "categoryId": "category"}
        )
        cats = cats[cats["item_id"].isin(df["item_id"].astype("int64").astype(str))]
        items = validate_items(cats, str(cat_path))
    return Dataset(
        name="diginetica",
        interactions=normalise_interactions(df),
        items=items,
        source_format="diginetica",
        files=files,
    )
