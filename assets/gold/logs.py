"""Landing the platform's warning and error logs in the lake (``bronze/platform_logs``).

Each process appends its warnings and errors to its own JSON-lines file
(``resources.logconfig.JsonlSink``); this asset reads every file from where the last landing
stopped (a byte offset per file, kept in ``.landed.json`` beside them), appends the complete
lines as rows, and deletes files of finished processes once landed and a day old. Appends
are idempotent by ``log_id`` (the hash of the file and the line's offset), so a landing that
dies before saving its offsets lands the same lines again harmlessly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import polars as pl

from economics.ids import stable_id
from resources.lake import Lake
from resources.logconfig import REQUIRED, default_log_dir
from resources.schemas import PLATFORM_LOGS

STATE = ".landed.json"
# Files untouched this long and fully landed are removed (their process is long gone).
RETIRE_SECONDS = 24 * 3600
ENVELOPE = ("timestamp", "level", "logger", "event", "provider_id", "process", *REQUIRED)


def parse_lines(path: Path, start: int) -> tuple[list[dict], int]:
    """Rows of the complete lines of ``path`` from byte ``start``, and the offset after the
    last complete line (a line being written stays for the next landing). Lines that are not
    JSON objects are kept as an ``event`` of their text."""
    with path.open("rb") as f:
        f.seek(start)
        data = f.read()
    end = data.rfind(b"\n") + 1
    rows, offset = [], start
    for raw in data[:end].splitlines(keepends=True):
        try:
            line = json.loads(raw)
        except ValueError:
            line = {"event": raw.decode("utf-8", "replace").strip(), "level": "error"}
        if not isinstance(line, dict):
            line = {"event": str(line), "level": "error"}
        rows.append(
            {
                "log_id": stable_id("log", path.name, offset),
                "logged_at": line.get("timestamp"),
                "level": line.get("level"),
                "logger": line.get("logger"),
                "event": str(line.get("event")),
                "event_type": line.get("event_type"),
                "economic_impact_usd": line.get("economic_impact_usd"),
                "urgency": line.get("urgency"),
                "operator_action": line.get("operator_action"),
                "runbook": line.get("runbook"),
                "provider_id": line.get("provider_id"),
                "process": line.get("process") or path.stem,
                "context": json.dumps({k: v for k, v in line.items() if k not in ENVELOPE}, default=str),
            }
        )
        offset += len(raw)
    return rows, start + end


def land(lake: Lake, directory: Path) -> int:
    """Append the new lines of every ``*.jsonl`` in ``directory``; returns rows landed."""
    state_path = directory / STATE
    offsets = json.loads(state_path.read_text()) if state_path.is_file() else {}
    rows: list[dict] = []
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        new, offsets[path.name] = parse_lines(path, int(offsets.get(path.name, 0)))
        rows += new
    if rows:
        frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
            logged_at=pl.col("logged_at").str.to_datetime(time_zone="UTC", strict=False),
            economic_impact_usd=pl.col("economic_impact_usd").cast(pl.Float64, strict=False),
        )
        lake.append(PLATFORM_LOGS, frame)
    now = time.time()
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        landed = offsets.get(path.name, 0) >= path.stat().st_size
        if landed and now - path.stat().st_mtime > RETIRE_SECONDS:
            path.unlink()
            offsets.pop(path.name, None)
    if directory.is_dir():
        state_path.write_text(json.dumps(offsets))
    return len(rows)


@dg.asset(key=["bronze", "platform_logs"], group_name="bronze", kinds={"deltalake"})
def platform_logs(lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    """Every process's warnings and errors (with event_type, economic_impact_usd, urgency,
    operator_action, runbook), landed from the per-process JSON-lines files."""
    return dg.MaterializeResult(metadata={"rows": land(lake, default_log_dir())})
