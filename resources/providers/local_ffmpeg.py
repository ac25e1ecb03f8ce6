"""The ``ffmpeg`` adapter: an effect is one ffmpeg filter graph run in a child process.

The workflow (``FFmpegWorkflow`` in ``providers.yaml``) is a ``-vf`` graph template whose
``{name}`` placeholders are filled per task from the effect's params, the workflow's derived
params and the input's facts; an optional generated ``.cube`` LUT is written to a per-task
temporary directory first. ``compute_seconds`` is the ffmpeg child's own CPU (``os.wait4``) plus
this thread's CPU for probing and LUT generation.
"""

from __future__ import annotations

import hashlib
import re
import string
import tempfile
import time
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from resources.providers._local import (
    ENCODE_ARGS,
    EVEN_CROP,
    CpuMeter,
    LocalAdapter,
    TaskFailure,
    call_ffmpeg,
    ffmpeg_health,
    probe_video,
    workflow_names,
)
from resources.providers.base import Health, ProviderTask
from resources.providers.color_luts import LUT_GENERATORS
from resources.providers.params import format_number, resolve
from resources.providers.registry import ProviderSpec


class FFmpegAdapter(LocalAdapter):
    """Runs ``spec.workflow.graph`` with ffmpeg (protocol: ``resources.providers.base``).

    Output: H.264 yuv420p mp4 (``_local.ENCODE_ARGS``), the input's size (cropped to even),
    video only. Failures come back as failed ``TaskResult``s: ``InputMissing``,
    ``InvalidParams`` (a placeholder or expression that cannot be filled), ``DecodeError``,
    ``FFmpegError`` (non-zero exit, with ffmpeg's last stderr lines), ``Timeout``,
    ``OutputInvalid``; ``FFmpegKilled`` / ``ResourceExhausted`` are retried once.

    Raises:
        ValueError: ``spec`` is not an ffmpeg provider.
    """

    adapter_kind = "ffmpeg"

    def __init__(self, spec: ProviderSpec):
        super().__init__(spec)
        self.workflow = spec.ffmpeg_workflow()
        self.filters = graph_filters(self.workflow.graph)

    def health_check(self) -> Health:
        """ffmpeg runs and has libx264 and every filter the graph names."""
        return ffmpeg_health((*self.filters, "crop"))

    def _names(self, task: ProviderTask) -> dict[str, Any]:
        """The graph's names for ``task``: the input's facts, the effect's params, the
        workflow's derived params."""
        names = workflow_names(task, probe_video(task.input_path))
        names.update(resolve(self.workflow.params.get(task.effect_type, {}), names))
        return names

    def _render(self, task: ProviderTask, out_path: str, meter: CpuMeter, timings: dict[str, int]) -> None:
        names = self._names(task)
        with tempfile.TemporaryDirectory(prefix="effectlake-ffmpeg-") as tmp:
            if self.workflow.lut is not None:
                t0 = time.perf_counter()
                path = Path(tmp) / "grade.cube"
                path.write_text(self._lut_text(names))
                names["lut_file"] = filter_path(str(path))
                timings["lut"] = int((time.perf_counter() - t0) * 1000)
            graph = render_graph(self.workflow.graph, names)
            t0 = time.perf_counter()
            call_ffmpeg(
                ffmpeg_command(task.input_path, graph, out_path),
                timeout_s=self.spec.timeout_seconds,
                meter=meter,
            )
            timings["ffmpeg"] = int((time.perf_counter() - t0) * 1000)

    def recipe(self, task: ProviderTask) -> dict[str, Any]:
        """``{"kind": "ffmpeg", "filter_graph", "lut", "ffmpeg_args", "seeds"}``: the filled
        ``-vf`` graph as run (a generated LUT file named by the sha256 of its text, since its
        temporary path differs per run), the LUT's generator, arguments and sha256, and the
        command's arguments with the input and output as ``{input}`` / ``{output}``."""
        names = self._names(task)
        lut = None
        if self.workflow.lut is not None:
            text = self._lut_text(names)
            digest = hashlib.sha256(text.encode()).hexdigest()
            lut = {"generator": self.workflow.lut.generator, "args": resolve(self.workflow.lut.args, names)}
            lut["sha256"] = digest
            names["lut_file"] = f"lut-{digest}.cube"
        graph = render_graph(self.workflow.graph, names)
        return {
            "kind": "ffmpeg",
            "filter_graph": f"{graph},{EVEN_CROP}",
            "lut": lut,
            "ffmpeg_args": ffmpeg_command("{input}", graph, "{output}"),
            "seeds": {},
        }

    def _lut_text(self, names: dict[str, Any]) -> str:
        lut = self.workflow.lut
        assert lut is not None
        args = resolve(lut.args, names)
        try:
            return _lut_text(lut.generator, tuple(sorted(args.items())))
        except (TypeError, ValueError) as exc:
            raise TaskFailure("InvalidParams", f"{lut.generator}({args}): {exc}") from None


@lru_cache(maxsize=64)
def _lut_text(generator: str, args: tuple[tuple[str, Any], ...]) -> str:
    # A 33³ LUT takes ~0.1 s to generate; a task renders it and its render spec hashes it,
    # and the tasks of one effect share their parameters.
    return LUT_GENERATORS[generator](**dict(args))


def ffmpeg_command(input_path: str, graph: str, out_path: str) -> list[str]:
    """The ffmpeg arguments of one render: the first video stream of ``input_path`` through
    ``graph`` (then cropped to even dimensions), encoded with ``ENCODE_ARGS`` to mp4."""
    return ["-i", input_path, "-map", "0:v:0", "-vf", f"{graph},{EVEN_CROP}", *ENCODE_ARGS, "-f", "mp4", out_path]


class _GraphFormatter(string.Formatter):
    """``str.format`` for graphs: bare numbers printed the way ffmpeg reads them."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return format_number(value) if not format_spec else super().format_field(value, format_spec)


def render_graph(template: str, names: Mapping[str, Any]) -> str:
    """Fill a graph template.

    Raises:
        TaskFailure: ``InvalidParams`` naming the placeholder that has no value.
    """
    try:
        return _GraphFormatter().vformat(template, (), names)
    except KeyError as exc:
        raise TaskFailure(
            "InvalidParams",
            f"the graph uses {{{exc.args[0]}}}, which is neither "
            f"an effect param, a workflow param nor an input fact "
            f"(have: {', '.join(sorted(names))})",
        ) from None
    except (ValueError, IndexError) as exc:
        raise TaskFailure("InvalidParams", f"cannot fill the graph template: {exc}") from None


def graph_filters(template: str) -> tuple[str, ...]:
    """Names of the filters a graph template uses, e.g. ``("colortemperature",)``.

    Quoted option values (which may hold ``,``) and ``[labels]`` are dropped before splitting
    the graph into filters on ``,`` and ``;``.
    """
    text = re.sub(r"'[^']*'", "''", template)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = []
    for part in re.split(r"[,;]", text):
        name = part.split("=", 1)[0].strip()
        if re.fullmatch(r"[A-Za-z0-9_]+", name) and name not in names:
            names.append(name)
    return tuple(names)


def filter_path(path: str) -> str:
    """A file path escaped for use as a filter option value inside a ``-vf`` graph.

    ffmpeg parses a graph in two levels (ffmpeg-filters(1) "Notes on filtergraph escaping"):
    option values escape ``\\ ' :``; the graph description then escapes ``\\ ' [ ] , ;``.
    """
    value = re.sub(r"([\\':])", r"\\\1", path)
    return re.sub(r"([\\'\[\],;])", r"\\\1", value)
