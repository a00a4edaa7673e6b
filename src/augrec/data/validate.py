"""Validation at ingest: one `Problem` per kind of defect, with counts and example rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augrec.data.schema import (
    EVENT_TYPES,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    REQUIRED_INTERACTION_COLUMNS,
)
from augrec.errors import DataValidationError, Problem

MAX_EXAMPLES = 3


def _examples(df: pd.DataFrame, mask: pd.Series, cols: list[str], row_offset: int) -> list[str]:
    rows = df.loc[mask, [c for c in cols if c in df.columns]].head(MAX_EXAMPLES)
    out = []
    for idx, row in rows.iterrows():
        values = ", ".join(f"{c}={row[c]!r}" for c in rows.columns)
        out.append(f"row {int(idx) + row_offset}: {values}")
    return out


def _as_int_ids(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ids as integers; returns (parsed, bad_mask) where bad means present but not an int."""
    num = pd.to_numeric(col, errors="coerce")
    bad = col.notna() & (num.isna() | (num.notna() & (num % 1 != 0)))
    return num, bad


def _parse_timestamps(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Accept Unix seconds or ISO-8601 strings; returns (seconds as float, bad_mask)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = pd.to_datetime(col, utc=True)
        num = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    else:
        num = pd.to_numeric(col, errors="coerce").astype("float64")
        text = num.isna() & col.notna()
        if text.any():
            parsed = pd.to_datetime(
                col[text].astype(str), errors="coerce", utc=True, format="ISO8601"
            )
            num[text] = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    bad = col.notna() & num.isna()
    return num, bad


def validate_interactions(
    df: pd.DataFrame, source: str, row_offset: int = 2, check_order: bool = False
) -> pd.DataFrame:
    """Check `df` against the interactions contract and return it with parsed columns.

    Args:
        df: Raw table as read from the file.
        source: File name used in the error message.
        row_offset: Added to the 0-based index to print file row numbers (2 = CSV header + 1).
        check_order: Also require timestamps to be non-decreasing within each user in file
            order (sequence formats, where order is the meaning).

    Raises:
        DataValidationError: listing every problem kind found; the caller writes nothing.
    """
    problems: list[Problem] = []
    if len(df) == 0:
        raise DataValidationError(
            source, [Problem("empty", "*", 0, "the file has no interaction rows")]
        )
    missing = [c for c in REQUIRED_INTERACTION_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            source,
            [
                Problem(
                    "columns",
                    ",".join(missing),
                    len(df),
                    f"required column(s) missing; found columns {list(df.columns)}, "
                    f"expected {list(REQUIRED_INTERACTION_COLUMNS)} "
                    "(+ optional event_type, weight)",
                )
            ],
        )

    out = df.copy()
    shown = ["user_id", "item_id", "timestamp"]
    for col in REQUIRED_INTERACTION_COLUMNS:
        nulls = df[col].isna()
        if nulls.any():
            problems.append(
                Problem(
                    "null",
                    col,
                    int(nulls.sum()),
                    "missing values",
                    _examples(df, nulls, shown, row_offset),
                )
            )
    for col in ("user_id", "item_id"):
        parsed, bad = _as_int_ids(df[col])
        if bad.any():
            problems.append(
                Problem(
                    "type",
                    col,
                    int(bad.sum()),
                    "ids must be integers",
                    _examples(df, bad, shown, row_offset),
                )
            )
        out[col] = parsed
    ts, bad_ts = _parse_timestamps(df["timestamp"])
    if bad_ts.any():
        problems.append(
            Problem(
                "type",
                "timestamp",
                int(bad_ts.sum()),
                "timestamps must be Unix seconds or ISO-8601",
                _examples(df, bad_ts, shown, row_offset),
            )
        )
    out_of_range = ts.notna() & ((ts < MIN_TIMESTAMP) | (ts > MAX_TIMESTAMP))
    if out_of_range.any():
        problems.append(
            Problem(
                "range",
                "timestamp",
                int(out_of_range.sum()),
                f"outside [{MIN_TIMESTAMP}, {MAX_TIMESTAMP}] Unix seconds (1970..2100); "
                "milliseconds instead of seconds?",
                _examples(df, out_of_range, shown, row_offset),
            )
        )
    out["timestamp"] = ts
    if "event_type" in df.columns:
        bad_ev = df["event_type"].notna() & ~df["event_type"].isin(EVENT_TYPES)
        if df["event_type"].isna().any():
            bad_ev |= df["event_type"].isna()
        if bad_ev.any():
            problems.append(
                Problem(
                    "value",
                    "event_type",
                    int(bad_ev.sum()),
                    f"must be one of {list(EVENT_TYPES)}",
                    _examples(df, bad_ev, [*shown, "event_type"], row_offset),
                )
            )
    if "weight" in df.columns:
        w = pd.to_numeric(df["weight"], errors="coerce")
        bad_w = w.isna() | (w < 0) | ~np.isfinite(w.fillna(0))
        if bad_w.any():
            problems.append(
                Problem(
                    "value",
                    "weight",
                    int(bad_w.sum()),
                    "must be a finite number >= 0",
                    _examples(df, bad_w, [*shown, "weight"], row_offset),
                )
            )
        out["weight"] = w
    key = [c for c in ("user_id", "item_id", "timestamp", "event_type") if c in df.columns]
    dup = df.duplicated(subset=key, keep="first")
    if dup.any():
        problems.append(
            Problem(
                "duplicate",
                ",".join(key),
                int(dup.sum()),
                "exact duplicate rows (same user, item, time and event)",
                _examples(df, dup, shown, row_offset),
            )
        )
    if check_order and not bad_ts.any():
        prev_user = out["user_id"].shift()
        decreasing = (out["user_id"] == prev_user) & (ts < ts.shift())
        if decreasing.any():
            problems.append(
                Problem(
                    "order",
                    "timestamp",
                    int(decreasing.sum()),
                    "time goes backwards within a user's sequence",
                    _examples(df, decreasing, shown, row_offset),
                )
            )
    if problems:
        raise DataValidationError(source, problems)
    return out


def validate_items(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check the items table: integer, unique, non-null item ids; numeric non-negative price."""
    problems: list[Problem] = []
    if "item_id" not in df.columns:
        raise DataValidationError(
            source,
            [Problem("columns", "item_id", len(df), f"missing; found {list(df.columns)}")],
        )
    parsed, bad = _as_int_ids(df["item_id"])
    nulls = df["item_id"].isna()
    if nulls.any():
        problems.append(
            Problem(
                "null",
                "item_id",
                int(nulls.sum()),
                "missing values",
                _examples(df, nulls, ["item_id"], 2),
            )
        )
    if bad.any():
        problems.append(
            Problem(
                "type",
                "item_id",
                int(bad.sum()),
                "ids must be integers",
                _examples(df, bad, ["item_id"], 2),
            )
        )
    dup = parsed.notna() & parsed.duplicated(keep="first")
    if dup.any():
        problems.append(
            Problem(
                "duplicate",
                "item_id",
                int(dup.sum()),
                "item listed more than once",
                _examples(df, dup, ["item_id"], 2),
            )
        )
    out = df.copy()
    out["item_id"] = parsed
    if "price" in df.columns:
        price = pd.to_numeric(df["price"], errors="coerce")
        bad_p = df["price"].notna() & (price.isna() | (price < 0))
        if bad_p.any():
            problems.append(
                Problem(
                    "value",
                    "price",
                    int(bad_p.sum()),
                    "must be a number >= 0",
                    _examples(df, bad_p, ["item_id", "price"], 2),
                )
            )
        out["price"] = price
    if problems:
        raise DataValidationError(source, problems)
    return out.astype({"item_id": "int64"})
