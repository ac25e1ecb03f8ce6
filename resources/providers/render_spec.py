"""The render spec of a provider output: everything needed to render it again and to tell
whether the new render is the same (docs/gallery.md, "Render specs").

One function, ``render_spec``, builds it for any adapter from the adapter's ``recipe`` (what
it runs, as data) and the task; ``assets.execution.runner.run_tasks`` attaches it to every
result it returns (test batches, benchmarks, A/B tests, effect runs), and M6 to remote
results when it collects them. It is stored as JSON in ``silver/provider_outputs.render_spec``
and with each gallery revision; ``effectlake rerender <output_id>`` re-runs it.

Shape (``SPEC_VERSION`` 1)::

    {"spec_version": 1, "provider_id", "provider_version", "provider", "adapter",
     "effect_type", "workflow", "workflow_hash", "params", "prompt", "seeds",
     "toolchain": {"ffmpeg", "opencv", "pyav", "numpy", "python", "cpu_count"},
     "input": {"key", "sha256"}, "output_sha256"}

- ``provider``: the provider's registry entry (``ProviderSpec`` as JSON data), so a re-render
  builds the same adapter even after ``data/providers.yaml`` changed; ``provider_version``
  is the first 12 hex of its hash.
- ``workflow``: the adapter's recipe — the filled ffmpeg filter graph and command, the OpenCV
  transform and its arguments, the ComfyUI graph; ``workflow_hash`` its sha256.
- ``toolchain``: the versions that shape the bytes. ``cpu_count`` is there because x264
  picks its thread count from it, and its output depends on the thread count (deterministic
  for a given one): a re-render on another machine may differ in bits but not in quality.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from typing import Any

import structlog

from resources.ffmpeg import ffmpeg_exe
from resources.hashing import cached_file_sha256, file_sha256, json_sha256
from resources.providers.base import ProviderAdapter, ProviderTask

SPEC_VERSION = 1

log = structlog.get_logger("effectlake.providers")


@lru_cache(maxsize=4)
def ffmpeg_version(exe: str) -> str:
    """The first line of ``<exe> -version`` without its prefix (e.g. ``7.0.2-static
    https://johnvansickle.com/ffmpeg/  Copyright …`` → ``7.0.2-static``); ``unknown`` when it
    does not run."""
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=15, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.removeprefix("ffmpeg version ").split(" ")[0] or "unknown"


@lru_cache(maxsize=1)
def _libraries() -> dict[str, str]:
    import av
    import cv2
    import numpy

    return {"opencv": cv2.__version__, "pyav": av.__version__, "numpy": numpy.__version__}


def toolchain() -> dict[str, Any]:
    """Versions of what turns a recipe into bytes: ffmpeg (with its x264), OpenCV, PyAV,
    NumPy, Python, and this machine's CPU count."""
    return {
        "ffmpeg": ffmpeg_version(ffmpeg_exe()),
        **_libraries(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def render_spec(task: ProviderTask, adapter: ProviderAdapter, output_path: str | None = None) -> dict[str, Any]:
    """The render spec of ``task`` on ``adapter`` (module docstring), with the sha256 of the
    output at ``output_path`` when there is one.

    Raises:
        OSError: the input (or the output) cannot be read.
        Whatever ``adapter.recipe`` raises (parameters that do not resolve).
    """
    recipe = adapter.recipe(task)
    return {
        "spec_version": SPEC_VERSION,
        "provider_id": task.provider_id,
        "provider_version": json_sha256(adapter.provider)[:12],
        "provider": adapter.provider,
        "adapter": adapter.provider.get("adapter"),
        "effect_type": task.effect_type,
        "workflow": recipe,
        "workflow_hash": json_sha256(recipe),
        "params": dict(task.params),
        "prompt": task.prompt,
        "seeds": recipe.get("seeds", {}),
        "toolchain": toolchain(),
        "input": {"key": task.input_key, "sha256": cached_file_sha256(task.input_path)},
        "output_sha256": file_sha256(output_path) if output_path else None,
    }


def try_render_spec(task: ProviderTask, adapter: ProviderAdapter, output_path: str | None = None) -> dict | None:
    """``render_spec``, or None (logged) when the task cannot be described: a failed task's
    missing input or unresolvable parameters are its failure, not a second one."""
    try:
        return render_spec(task, adapter, output_path)
    except Exception as exc:  # noqa: BLE001 - describing must never fail the task it describes
        error = f"{type(exc).__name__}: {exc}"[:500]
        if output_path is None:  # a failed task: its own failure says why
            log.info("render_spec_unavailable", provider_id=task.provider_id, task_id=task.task_id, error=error)
            return None
        log.warning(
            "render_spec_unavailable",
            provider_id=task.provider_id,
            task_id=task.task_id,
            error=error,
            event_type="render_spec_unavailable",
            economic_impact_usd=0.0,  # the output is delivered; only its reproducibility is lost
            urgency="low",
            operator_action="Fix the adapter's recipe for this provider; the output cannot be re-rendered.",
            runbook="docs/runbooks/platform-logs.md#render_spec_unavailable",
        )
        return None
