"""Deterministic, atomic parquet writes: fixed schema, no pandas/timestamp metadata, temp file then rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from verl_reason_rft.data_prep.atomic import atomic_path

ROW_GROUP_SIZE = 1024


def write_rows(rows: Sequence[dict[str, Any]], schema: pa.Schema, path: str | os.PathLike) -> Path:
    """Write ``rows`` with exactly ``schema``; same rows give a byte-identical file, a crash leaves none."""
    table = pa.Table.from_pylist(list(rows), schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_SIZE, write_statistics=False)
    return Path(path)
