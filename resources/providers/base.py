"""The provider adapter protocol (docs/architecture.md, "Providers") and the task/result shapes every adapter speaks.

A provider is one way to produce an effect: an adapter kind + a workflow + a price. Local
adapters run to completion in ``execute``; remote ones (ComfyUI) return a handle from ``submit``
that ``poll`` resolves later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ProviderTask:
    """One execution of one effect on one provider.

    Attributes:
        task_id: deterministic id (video_id, effect_type, provider_id).
        video_id: the upload (correlation id).
        effect_type: catalog effect type, e.g. ``warm_grade``.
        provider_id: registry id, e.g. ``ffmpeg-colortemp``.
        input_path: local path of the normalized proxy (H.264 mp4).
        output_path: local path the adapter must write its mp4 to.
        params: effect parameters from the prompt variant (e.g. ``{"strength": 0.6}``).
        prompt: the prompt text (used by generative providers; logged by local ones).
        attempt: the first attempt number this submit may use (a remote provider names its
            job by task and attempt; a retry after a lost or failed job passes the next one,
            so it never joins the earlier job).
        input_key: media key of the input, when it came from the media store (recorded in
            the output's render spec, so the render can be re-run on the same input).
        server: which of a multi-server provider's servers the task was admitted to
            (0-based; ``resilience.assign_servers``); 0 for every other provider.
    """

    task_id: str
    video_id: str
    effect_type: str
    provider_id: str
    input_path: str
    output_path: str
    params: dict[str, Any] = field(default_factory=dict)
    prompt: str = ""
    attempt: int = 1
    input_key: str | None = None
    server: int = 0


@dataclass(frozen=True)
class TaskResult:
    """Outcome and telemetry of a task (docs/architecture.md, "Providers" telemetry).

    Attributes:
        status: ``succeeded`` or ``failed``.
        output_path: local path of the output mp4 when succeeded, else None.
        duration_ms: wall milliseconds from start of work to result.
        queue_wait_ms: milliseconds spent waiting for a slot before work started.
        compute_seconds: measured CPU seconds of the work (child processes' rusage or the
            worker thread's CPU time), or GPU seconds reported by a remote provider.
        instance_type: rate-card instance type the work ran on.
        partner_cost_usd: per-call cost billed by a partner API (0 for local work).
        attempts: how many tries were made (1 = first try succeeded or failed for good).
        error_class: short machine-readable class when failed (``FFmpegError``, ``Timeout``…).
        error_message: readable reason when failed.
        node_timings: per-node milliseconds where the provider reports them, else empty.
        render_spec: how the output was rendered (``resources.providers.render_spec``), set
            by ``assets.execution.runner.run_tasks`` (and M6 for remote tasks); None when it
            could not be described.
    """

    task_id: str
    status: str
    output_path: str | None
    duration_ms: int
    compute_seconds: float
    instance_type: str
    queue_wait_ms: int = 0
    partner_cost_usd: float = 0.0
    attempts: int = 1
    error_class: str | None = None
    error_message: str | None = None
    node_timings: dict[str, int] = field(default_factory=dict)
    render_spec: dict[str, Any] | None = None


@dataclass(frozen=True)
class RemoteStatus:
    """Where a remote task stands, read from the provider without downloading anything.

    Attributes:
        state: ``queued`` | ``running`` | ``done`` (a final record exists) | ``lost`` (the
            provider has no record: restarted or cleared) | ``refused`` (the submit itself
            failed; ``error_class`` says why) | ``unreachable`` (no answer: no news).
        start_ms / end_ms: the provider's epoch milliseconds of the start and the final event,
            when ``done``.
        succeeded: when ``done``: True on success.
        interrupted: when ``done``: the provider stopped it on our request.
        error_class / error_message: why it failed (``done`` unsuccessful, ``lost``, ``refused``).
        retry_after_s: a ``refused`` submit's ``Retry-After``, seconds.
        output: the provider's output file ``{"filename", "subfolder", "type"}`` on success.
    """

    state: str
    start_ms: int | None = None
    end_ms: int | None = None
    succeeded: bool = False
    interrupted: bool = False
    error_class: str | None = None
    error_message: str | None = None
    retry_after_s: float | None = None
    output: dict[str, str] | None = None


@dataclass(frozen=True)
class Located:
    """Whether a remote provider still has one attempt of a task (``RemoteAdapter.locate``).

    Attributes:
        known: True = it has the job (queued, running or finished), False = it answered and
            has no record of it, None = it did not answer (no news: decide nothing).
        handle: when known, a handle for ``status``/``cancel``/``fetch``/``cleanup``.
        detail: what the provider said, readable.
    """

    known: bool | None
    handle: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Health:
    """Result of a provider health check: ``ok`` plus a readable ``detail`` and latency."""

    ok: bool
    detail: str
    latency_ms: int = 0


@runtime_checkable
class ProviderAdapter(Protocol):
    """What the execution stage (M6) and the completion sensor need from any provider.

    ``provider`` is the provider's registry entry as plain data (``ProviderSpec`` dumped to
    JSON types): the render spec records it, and ``effectlake rerender`` rebuilds the adapter
    from it.
    """

    provider_id: str
    provider: dict[str, Any]

    def supports(self, effect_type: str) -> bool:
        """True when this provider can run ``effect_type``."""

    def submit(self, task: ProviderTask) -> str:
        """Start the task; return an opaque handle for ``poll``."""

    def poll(self, handle: str) -> TaskResult | None:
        """The finished result, or None while pending."""

    def health_check(self) -> Health:
        """Cheap liveness probe."""

    def execute(self, task: ProviderTask) -> TaskResult:
        """Submit and wait (local adapters do the work here). Never raises for task failure:
        failures come back as ``TaskResult(status="failed", error_class=…)``."""

    def recipe(self, task: ProviderTask) -> dict[str, Any]:
        """What this adapter runs for ``task``, exactly and as data (the filled ffmpeg filter
        graph, the frame transform and its arguments, the ComfyUI graph), with ``kind`` naming
        the form and ``seeds`` any random seeds it uses. Deterministic: the same task on the
        same input gives the same recipe; its hash is the render spec's ``workflow_hash``.

        Raises:
            Whatever resolving the workflow raises (a missing input, bad parameters).
        """


@runtime_checkable
class RemoteAdapter(ProviderAdapter, Protocol):
    """A provider whose tasks run elsewhere and outlive the run that sent them: M6 submits,
    the completion sensor reads ``status`` and cancels what is overdue, M6 later fetches the
    output and cleans the provider up (docs/architecture.md, "Remote tasks")."""

    def status(self, handle: str) -> RemoteStatus:
        """Where the task stands. Never raises: a provider that does not answer is
        ``unreachable`` (no news; the task's deadlines still run)."""

    def cancel(self, handle: str) -> None:
        """Drop the task from the provider's queue, or interrupt it if running."""

    def fetch(self, handle: str, output: dict[str, str], dest: str) -> int:
        """Download the output to ``dest``; return its bytes."""

    def cleanup(self, handle: str, output: dict[str, str] | None) -> None:
        """Delete the uploaded input, the output and the provider's record of the task."""

    def locate(self, task_id: str, attempt: int) -> Located:
        """Whether the provider has attempt ``attempt`` of ``task_id`` (the orphan-recovery
        sensor asks this of a task whose sender stopped before recording the handle). Never
        raises: no answer is ``known=None``."""
