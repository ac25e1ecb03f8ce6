"""The one structlog configuration of every effectlake process (API, CLI, Dagster code
location), and the contract of its warnings and errors (docs/signals.md, "Action-oriented logs").

Every warning and error names what it costs and what to do:

    event_type           machine-readable kind (``provider_unhealthy``, ``upload_rejected``…)
    economic_impact_usd  what the event costs or puts at risk, USD (0 when nothing)
    urgency              low | medium | high | critical
    operator_action      what an operator should do, one sentence
    runbook              the docs page (``docs/runbooks/…md``, optionally ``#anchor``)

``require_action_fields`` enforces it. In strict mode (``EFFECTLAKE_LOG_STRICT=1``, which the
test suite sets) a warning or error without the fields raises ``UnactionableLog``, so a bare
``log.warning("…")`` fails its test. Outside tests the line is not lost: it is kept, raised
to error and marked ``event_type="log_contract_violation"`` with the missing fields named.

``JsonlSink`` appends every warning and error, as one JSON object per line, to
``<log dir>/<host>-<pid>.jsonl`` (one file per process, so writers never interleave); the
``platform_logs`` asset lands those lines in the lake in batches, where the Isolation Forest
and the dashboard read them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import structlog

REQUIRED = ("event_type", "economic_impact_usd", "urgency", "operator_action", "runbook")
URGENCIES = ("low", "medium", "high", "critical")
ACTIONABLE_LEVELS = frozenset({"warning", "error", "critical", "exception"})
STRICT_ENV = "EFFECTLAKE_LOG_STRICT"
LOG_DIR_ENV = "EFFECTLAKE_LOG_DIR"
REPO = Path(__file__).resolve().parents[1]


class UnactionableLog(ValueError):
    """A warning or error was logged without the action fields (strict mode)."""


def _problems(event_dict: dict) -> list[str]:
    missing = [f for f in REQUIRED if event_dict.get(f) in (None, "")]
    if "urgency" not in missing and event_dict["urgency"] not in URGENCIES:
        missing.append(f"urgency must be one of {URGENCIES}")
    if "economic_impact_usd" not in missing and not isinstance(event_dict["economic_impact_usd"], int | float):
        missing.append("economic_impact_usd must be a number")
    if "runbook" not in missing:
        page = str(event_dict["runbook"]).split("#")[0]
        if not (REPO / page).is_file():
            missing.append(f"runbook {page} does not exist")
    return missing


def require_action_fields(_logger: Any, method_name: str, event_dict: dict) -> dict:
    """structlog processor: a warning or error must carry ``REQUIRED`` (module docstring).

    Raises:
        UnactionableLog: in strict mode, when a field is missing or invalid.
    """
    level = event_dict.get("level", method_name)
    if level not in ACTIONABLE_LEVELS:
        return event_dict
    problems = _problems(event_dict)
    if not problems:
        return event_dict
    if os.environ.get(STRICT_ENV) == "1":
        raise UnactionableLog(f"{level} {event_dict.get('event')!r} is not actionable: {', '.join(problems)}")
    return {
        **event_dict,
        "level": "error",
        "event_type": "log_contract_violation",
        "economic_impact_usd": 0.0,
        "urgency": "medium",
        "operator_action": f"Add {', '.join(problems)} to this log call.",
        "runbook": "docs/runbooks/platform-logs.md#log_contract_violation",
        "original_event_type": event_dict.get("event_type"),
    }


class JsonlSink:
    """structlog processor appending warnings and errors to this process's JSON-lines file.

    Args:
        directory: where the per-process files go (created on first write).
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """This process's file (the pid is read per call: a forked child gets its own)."""
        return self.directory / f"{socket.gethostname()}-{os.getpid()}.jsonl"

    def __call__(self, _logger: Any, method_name: str, event_dict: dict) -> dict:
        if event_dict.get("level", method_name) in ACTIONABLE_LEVELS:
            line = json.dumps({**event_dict, "process": f"{socket.gethostname()}-{os.getpid()}"}, default=str)
            with self._lock:
                self.directory.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
        return event_dict


def default_log_dir() -> Path:
    """``EFFECTLAKE_LOG_DIR``, else ``data/logs`` of the checkout (git-ignored with data/)."""
    return Path(os.environ.get(LOG_DIR_ENV) or REPO / "data" / "logs")


def configure(log_dir: str | Path | None = None) -> None:
    """Configure structlog for this process: context variables, level, UTC ISO timestamp,
    the action-field contract, the JSON-lines sink, then a console renderer. Safe to call
    again (the API, the CLI and the code location each call it; the last directory wins)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            require_action_fields,
            JsonlSink(log_dir or default_log_dir()),
            structlog.processors.format_exc_info,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        cache_logger_on_first_use=False,
    )
