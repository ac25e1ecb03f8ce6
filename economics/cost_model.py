"""Cost of an execution and what the user was charged for it (docs/architecture.md, "Economics").

Per execution, in USD, six terms that sum to ``cost_usd`` (``cost_breakdown`` returns each):

    compute   = busy_seconds × rate × s
    startup   = cold_start_seconds / tasks_per_burst × rate × s
    idle      = (1 − u) / u × busy_seconds × rate × s
    partner   = recorded per-call charge + partner_tokens / 1e6 × usd_per_million_tokens
                + partner_credits × usd_per_credit
    storage   = output_bytes / 2^30 × storage_usd_per_gb_month × retention_days / (365.25 / 12)
    bandwidth = egress_bytes / 2^30 × bandwidth_usd_per_gb

    cost_tokens = cost_usd / token_usd_rate
    margin      = (tokens charged − cost_tokens) / tokens charged     (economics.margin)

where ``rate`` is the rate card's USD per compute-second of the instance type and ``s`` the
rate card's ``spot_multiplier`` when the task ran on spot capacity (else 1).

Why these forms:

* **startup** — a provider scaled to zero pays ``cold_start_seconds`` of instance time before
  the first task of a burst (a run of tasks with gaps no longer than the keep-warm period);
  the burst's tasks share it equally. ``tasks_per_burst`` is measured by ``measure_bursts``;
  unmeasured it is 1, so each task pays a whole cold start — the most it can cost, so a
  provider never looks cheaper than it is for lack of data.
* **idle** — an instance provisioned for T seconds at utilisation u is busy u·T and idle
  (1 − u)·T. Charging the idle time to tasks in proportion to their busy seconds gives each
  (1 − u)/u × busy, so compute + idle over all tasks equals the instance bill. u is in the
  rate card's unit (one compute-second = one instance-second) and is measured by
  ``measure_bursts`` (per provider for a dedicated fleet, per instance type for adapters that
  share hosts); unmeasured it is 1 (no idle charged): idle time of an always-on shared host is
  not caused by one provider, so it is charged only once measured.
* **storage** — object stores bill GB-months pro rata (S3: GB = 2^30 bytes, averaged over the
  hours of the month), so an output kept ``retention_days`` costs that fraction of a month.
  Only rows with ``output_bytes`` pay it (a failed task stored nothing).
* **bandwidth** — ``egress_bytes`` when recorded; otherwise each user-visible successful
  output is assumed downloaded ``egress_per_output`` times (default once: the user fetches
  the result) and shadow copies never leave the lake.

Rates and defaults: ``RateCard`` (from ``data/rate_card.yaml``; its optional keys are listed
in ``RateCard.from_dict``) and ``ProviderCostProfile`` (``profiles_from_registry``: the
provider's ``cost`` in ``data/providers.yaml`` plus ``measure_bursts``). Without profiles the
cost is compute + recorded partner cost (+ storage and egress when bytes are given), as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import polars as pl
from polars._typing import PolarsDataType

from economics.frames import Frame, lookup, names, one_of
from economics.margin import margin_expr

BYTES_PER_GB = 2**30  # AWS bills storage and transfer in GB of 2^30 bytes ("GB-Month").
DAYS_PER_MONTH = 365.25 / 12  # storage is pro-rated over an average month
TOKENS_PER_MILLION = 1_000_000  # partner LLM-style APIs price per 1M tokens

# Defaults of the optional rate-card keys. The two prices are AWS list prices (S3 Standard,
# first 50 TB, and internet egress, first 10 TB, us-east-1) — the same values the rate card
# ships, so a card without them still charges storage and egress at a real price.
DEFAULT_STORAGE_USD_PER_GB_MONTH = 0.023
DEFAULT_BANDWIDTH_USD_PER_GB = 0.09
DEFAULT_RETENTION_DAYS = 30.0  # assumption: outputs are kept a month before lifecycle expiry
DEFAULT_EGRESS_PER_OUTPUT = 1.0  # assumption: the user downloads a delivered result once
# Assumption: a scale-to-zero node stays warm 5 minutes after its last task (serverless GPU
# platforms default to 1–15 minutes); ends bursts in ``measure_bursts``.
DEFAULT_KEEP_WARM_SECONDS = 300.0
# Floor of a measured utilisation: below it (1 − u)/u explodes on a handful of tasks (at 0.05
# idle is 19× busy), and a provider that idle is a fleet problem, flagged elsewhere.
MIN_UTILISATION = 0.05

BREAKDOWN_COLUMNS = (
    "compute_cost_usd",
    "startup_cost_usd",
    "idle_cost_usd",
    "partner_cost_usd",
    "storage_cost_usd",
    "bandwidth_cost_usd",
)
# Columns of ``cost_frame``'s result beyond its input. The detailed terms
# (BREAKDOWN_COLUMNS) are added only on request (``breakdown=True``, as the economics job
# asks, since ``execution_costs`` stores every term); callers that want the total alone,
# like the scenario tests and the simulator's benches, get a narrower frame.
FRAME_COLUMNS = (
    "compute_cost_usd",
    "partner_cost_usd",
    "cost_usd",
    "tokens_charged",
    "revenue_usd",
    "cost_tokens",
    "margin",
)


@dataclass(frozen=True)
class RateCard:
    """Prices of the platform's own resources, from ``data/rate_card.yaml``.

    Attributes:
        usd_per_second: instance type → USD per compute-second (hourly list price / 3600).
        spot_multiplier: factor applied to instance time on spot capacity (0..1).
        storage_usd_per_gb_month: object storage, USD per GB (2^30 B) per month.
        bandwidth_usd_per_gb: egress, USD per GB (2^30 B).
        retention_days: days an output is stored (key ``output_retention_days``).
        egress_per_output: downloads assumed per delivered output when egress is not
            recorded (key ``egress_downloads_per_output``).
        keep_warm_seconds: idle seconds before a scale-to-zero node is released (key
            ``keep_warm_seconds``); separates bursts.
    """

    usd_per_second: dict[str, float]
    spot_multiplier: float = 1.0
    storage_usd_per_gb_month: float = DEFAULT_STORAGE_USD_PER_GB_MONTH
    bandwidth_usd_per_gb: float = DEFAULT_BANDWIDTH_USD_PER_GB
    retention_days: float = DEFAULT_RETENTION_DAYS
    egress_per_output: float = DEFAULT_EGRESS_PER_OUTPUT
    keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS

    @classmethod
    def from_dict(cls, doc: dict) -> RateCard:
        """Build from the parsed YAML (``instance_types: {name: {usd_per_hour}}`` plus the
        optional keys ``spot_multiplier``, ``storage_usd_per_gb_month``,
        ``bandwidth_usd_per_gb``, ``output_retention_days``, ``egress_downloads_per_output``,
        ``keep_warm_seconds``; missing keys take the module defaults above)."""
        rates = {k: float(v["usd_per_hour"]) / 3600.0 for k, v in doc["instance_types"].items()}

        def opt(key: str, default: float) -> float:
            return float(doc.get(key, default))

        return cls(
            rates,
            spot_multiplier=opt("spot_multiplier", 1.0),
            storage_usd_per_gb_month=opt("storage_usd_per_gb_month", DEFAULT_STORAGE_USD_PER_GB_MONTH),
            bandwidth_usd_per_gb=opt("bandwidth_usd_per_gb", DEFAULT_BANDWIDTH_USD_PER_GB),
            retention_days=opt("output_retention_days", DEFAULT_RETENTION_DAYS),
            egress_per_output=opt("egress_downloads_per_output", DEFAULT_EGRESS_PER_OUTPUT),
            keep_warm_seconds=opt("keep_warm_seconds", DEFAULT_KEEP_WARM_SECONDS),
        )

    def rate(self, instance_type: str) -> float:
        """USD per compute-second.

        Raises:
            KeyError: the instance type is not on the rate card (a provider declared an
                instance the business has no price for; better loud than free).
        """
        try:
            return self.usd_per_second[instance_type]
        except KeyError:
            raise KeyError(f"instance type {instance_type!r} is not on the rate card") from None


@dataclass(frozen=True)
class ProviderCostProfile:
    """How one provider is billed beyond busy seconds (all defaults = a local adapter).

    Attributes:
        cold_start_seconds: instance seconds paid before a burst (``providers.yaml`` cost).
        tasks_per_burst: tasks sharing one cold start (≥ 1; measured, else 1 — see module).
        utilisation: busy share of provisioned instance time (MIN_UTILISATION..1; measured,
            else 1 — see module).
        partner_usd_per_call: partner fee per call. ``cost_breakdown`` uses the recorded
            ``partner_cost_usd`` instead (the runner knows whether the call ran); this is
            the forecast price the estimator uses.
        partner_usd_per_million_tokens: partner usage price per 1M tokens.
        partner_usd_per_credit: partner usage price per credit.
        spot: the provider's instances are spot capacity (a row's ``spot`` column wins).
    """

    cold_start_seconds: float = 0.0
    tasks_per_burst: float = 1.0
    utilisation: float = 1.0
    partner_usd_per_call: float = 0.0
    partner_usd_per_million_tokens: float = 0.0
    partner_usd_per_credit: float = 0.0
    spot: bool = False

    def __post_init__(self):
        if self.tasks_per_burst < 1:
            raise ValueError(f"tasks_per_burst must be ≥ 1, got {self.tasks_per_burst}")
        if not MIN_UTILISATION <= self.utilisation <= 1:
            raise ValueError(f"utilisation must be in [{MIN_UTILISATION}, 1], got {self.utilisation}")


# --- the cost terms, written once for floats and polars expressions alike ------------------------
def startup_seconds(cold_start_seconds, tasks_per_burst):
    """Cold-start instance seconds charged to one task of a burst."""
    return cold_start_seconds / tasks_per_burst


def idle_seconds(busy_seconds, utilisation):
    """Idle instance seconds charged to a task: (1 − u)/u × busy."""
    return busy_seconds * (1 - utilisation) / utilisation


def storage_usd(output_bytes, rate_card: RateCard):
    """USD to keep ``output_bytes`` for the rate card's retention period (one factor per
    byte, so a column pays a single multiplication)."""
    per_byte = rate_card.storage_usd_per_gb_month * rate_card.retention_days / DAYS_PER_MONTH / BYTES_PER_GB
    return output_bytes * per_byte


def bandwidth_usd(egress_bytes, rate_card: RateCard):
    """USD to send ``egress_bytes`` out of the cloud."""
    return egress_bytes * (rate_card.bandwidth_usd_per_gb / BYTES_PER_GB)


def partner_usage_usd(tokens, credits, usd_per_million_tokens, usd_per_credit):
    """USD of metered partner usage (tokens and credits), on top of the per-call fee."""
    return tokens / TOKENS_PER_MILLION * usd_per_million_tokens + credits * usd_per_credit


# --- frames -------------------------------------------------------------------------------------
# The frame functions take execution rows eagerly (a DataFrame) or as a plan (a LazyFrame, so
# the economics cycle streams millions of rows instead of holding them): economics.frames.
def _col(df: pl.DataFrame | pl.LazyFrame, name: str, default) -> pl.Expr:
    return pl.col(name) if name in names(df) else pl.lit(default)


def _amount(df: pl.DataFrame | pl.LazyFrame, name: str) -> pl.Expr:
    # An optional numeric input: absent or null means none of it.
    return _col(df, name, 0.0).cast(pl.Float64).fill_null(0.0)


# Selections the user is never charged for: shadow copies (never shown) and admin A/B runs
# (the business's own experiment).
UNCHARGED_SELECTIONS = ("shadow", "ab")


def _user_visible_success(df: pl.DataFrame | pl.LazyFrame) -> pl.Expr:
    # Charged and delivered: a successful execution a user asked for.
    succeeded = _col(df, "status", "succeeded") == "succeeded"
    return succeeded & ~one_of(_col(df, "selection", "ranked"), UNCHARGED_SELECTIONS)


def cost_breakdown(
    outputs: Frame,
    rate_card: RateCard,
    *,
    profiles: Mapping[str, ProviderCostProfile] | None = None,
) -> Frame:
    """Add the six cost terms and their sum to execution rows.

    Args:
        outputs: one row per execution (a DataFrame, or a LazyFrame: the result is then a
            plan too). Required: ``instance_type``, ``compute_seconds``
            (busy seconds; null = 0). Optional (absent = 0 / default): ``provider_id`` (to
            find a profile), ``partner_cost_usd`` (recorded per-call charge), ``spot``
            (bool), ``output_bytes``, ``egress_bytes``, ``partner_tokens``,
            ``partner_credits``, ``status`` and ``selection`` (for the egress default).
        rate_card: see RateCard.
        profiles: provider_id → ProviderCostProfile; providers not in it get the defaults.

    Returns:
        ``outputs`` plus ``compute_cost_usd, startup_cost_usd, idle_cost_usd,
        partner_cost_usd`` (the full partner bill; replaces the recorded column),
        ``storage_cost_usd, bandwidth_cost_usd`` and ``cost_usd`` (their sum), all Float64
        USD, never null.

    Raises:
        KeyError: an instance type is not on the rate card (a DataFrame is checked first; a
            LazyFrame cannot be, so its plan fails when collected, with polars'
            InvalidOperationError naming the instance type: never a free execution).
    """
    return _breakdown(outputs, rate_card, profiles).drop(_VISIBLE)


# The helper column ``_breakdown`` leaves for ``cost_frame``: a user-visible success.
_VISIBLE = "_visible"


def _breakdown(outputs: Frame, rate_card: RateCard, profiles: Mapping[str, ProviderCostProfile] | None) -> Frame:
    # ``cost_breakdown`` keeping the _VISIBLE column.
    if isinstance(outputs, pl.DataFrame):
        missing = set(outputs["instance_type"].drop_nulls().unique()) - set(rate_card.usd_per_second)
        if missing:
            raise KeyError(f"instance types not on the rate card: {sorted(missing)}")
    default = ProviderCostProfile()
    by_provider = profiles if profiles and "provider_id" in names(outputs) else {}

    def profile(name: str, dtype: PolarsDataType) -> pl.Expr | float:
        # The providers' value where it is not the default (most are not measured), else the
        # default; the default itself, a number, when no provider's differs.
        fallback = getattr(default, name)
        values = {pid: getattr(p, name) for pid, p in by_provider.items() if getattr(p, name) != fallback}
        return lookup(pl.col("provider_id"), values, dtype).fill_null(fallback) if values else fallback

    p = {f.name: profile(f.name, pl.Boolean if f.name == "spot" else pl.Float64) for f in fields(ProviderCostProfile)}
    # Spot capacity multiplies the instance's rate: per row when rows or profiles say so,
    # else by one number (none at all when nothing runs on spot).
    spot: pl.Expr | float = p["spot"]
    if "spot" in names(outputs):
        spot = pl.col("spot").cast(pl.Boolean).fill_null(p["spot"])
    spot_factor: pl.Expr | float | None = rate_card.spot_multiplier if spot is True else None
    if isinstance(spot, pl.Expr):
        spot_factor = pl.when(spot).then(rate_card.spot_multiplier).otherwise(1.0)
    # USD per instance-second and "delivered to a user" are columns of their own (several terms
    # read them; polars does not share a lookup between expressions). An unpriced instance
    # type fails a lazy plan too: the rows the rate card does not price (and only those) are
    # cast strictly to an Enum of its types. Casting every row instead cost ~0.2 CPU s more
    # at 10 M rows than the lookup itself (measured).
    df = outputs.with_columns(
        _instance_usd=lookup(pl.col("instance_type"), rate_card.usd_per_second, pl.Float64),
        **{_VISIBLE: _user_visible_success(outputs)},
    )
    rate = pl.col("_instance_usd")
    unpriced = pl.when(rate.is_null()).then(pl.col("instance_type")).cast(pl.Enum(list(rate_card.usd_per_second)))
    guarded = rate.fill_null(unpriced.to_physical().cast(pl.Float64))
    # (still null after the guard: no instance type, no compute charged)
    usd = guarded.fill_null(0.0)
    df = df.with_columns(_instance_usd=usd if spot_factor is None else usd * spot_factor)
    instance_usd = pl.col("_instance_usd")
    busy, output_bytes = _amount(df, "compute_seconds"), _amount(df, "output_bytes")
    # Unrecorded egress: each delivered output downloaded ``egress_per_output`` times.
    assumed = pl.when(pl.col(_VISIBLE)).then(output_bytes * rate_card.egress_per_output).otherwise(0.0)
    egress = pl.col("egress_bytes").cast(pl.Float64).fill_null(assumed) if "egress_bytes" in names(df) else assumed
    usage = None
    if not _zero(p["partner_usd_per_million_tokens"]) or not _zero(p["partner_usd_per_credit"]):
        usage = partner_usage_usd(
            _amount(df, "partner_tokens"),
            _amount(df, "partner_credits"),
            p["partner_usd_per_million_tokens"],
            p["partner_usd_per_credit"],
        )
    recorded = _amount(df, "partner_cost_usd")
    # A term no provider's profile makes nonzero is a literal 0, left out of the sum: no
    # per-row work for it (at 10 M rows the startup and idle terms of unmeasured providers
    # were ~0.05 CPU s of multiplications by 0). Idle seconds are linear in busy seconds.
    terms = {
        "compute_cost_usd": busy * instance_usd,
        "startup_cost_usd": _times(startup_seconds(p["cold_start_seconds"], p["tasks_per_burst"]), instance_usd),
        "idle_cost_usd": _times(idle_seconds(1.0, p["utilisation"]), busy * instance_usd),
        "partner_cost_usd": recorded if usage is None else recorded + usage,
        "storage_cost_usd": storage_usd(output_bytes, rate_card),
        "bandwidth_cost_usd": bandwidth_usd(egress, rate_card),
    }
    charged = [name for name, term in terms.items() if term is not None]
    return (
        df.with_columns(**{name: pl.lit(0.0) if term is None else term for name, term in terms.items()})
        .with_columns(cost_usd=pl.sum_horizontal(*charged))
        .drop("_instance_usd")
    )


def _zero(value: pl.Expr | float) -> bool:
    # A profile value known to be 0 before any row is read.
    return not isinstance(value, pl.Expr) and value == 0


def _times(factor: pl.Expr | float, per_row: pl.Expr) -> pl.Expr | None:
    # factor × per_row; None when the factor is known to be 0.
    return None if _zero(factor) else factor * per_row


def execution_cost_usd(
    compute_seconds: float,
    instance_type: str,
    partner_cost_usd: float,
    rate_card: RateCard,
    spot: bool = False,
    *,
    profile: ProviderCostProfile | None = None,
    output_bytes: int = 0,
    egress_bytes: int | None = None,
    partner_tokens: float = 0.0,
    partner_credits: float = 0.0,
) -> float:
    """USD cost of one execution: the six terms of ``cost_breakdown`` for one row.

    With only the positional arguments this is compute × rate (× spot multiplier) + partner
    cost. ``egress_bytes`` None = ``output_bytes`` × the rate card's downloads per output (a
    delivered output).

    Raises:
        KeyError: the instance type is not on the rate card.
    """
    rate_card.rate(instance_type)  # the single-row message names the instance type
    row = pl.DataFrame(
        {
            "provider_id": ["_"],
            "instance_type": [instance_type],
            "compute_seconds": [float(compute_seconds)],
            "partner_cost_usd": [float(partner_cost_usd)],
            "spot": [bool(spot)],
            "output_bytes": [float(output_bytes)],
            "egress_bytes": [None if egress_bytes is None else float(egress_bytes)],
            "partner_tokens": [float(partner_tokens)],
            "partner_credits": [float(partner_credits)],
        },
        schema_overrides={"egress_bytes": pl.Float64},
    )
    costs = cost_breakdown(row, rate_card, profiles={"_": profile} if profile else None)
    return float(costs["cost_usd"][0])


def cost_frame(
    outputs: Frame,
    rate_card: RateCard,
    price_tokens: dict[str, int],
    token_usd_rate: float,
    *,
    profiles: Mapping[str, ProviderCostProfile] | None = None,
    breakdown: bool = False,
) -> Frame:
    """Add cost and margin columns to execution rows.

    Args:
        outputs: rows (a DataFrame, or a LazyFrame: the result is then a plan too) with
            ``status``, ``effect_type``, ``instance_type``, ``compute_seconds``,
            ``partner_cost_usd`` and (optional) ``selection`` and the optional columns of
            ``cost_breakdown``; shadow copies are never charged.
        rate_card: see RateCard.
        price_tokens: effect type → tokens charged per successful execution.
        token_usd_rate: USD per token.
        profiles: see ``cost_breakdown``.
        breakdown: also keep ``startup_cost_usd, idle_cost_usd, storage_cost_usd,
            bandwidth_cost_usd`` (the economics job asks for them: ``execution_costs`` stores
            every term; off by default for callers that want the total alone).

    Returns:
        ``outputs`` plus ``compute_cost_usd``, ``partner_cost_usd`` (full partner bill, 0
        when unrecorded), ``cost_usd``, ``tokens_charged`` (Int64), ``revenue_usd``,
        ``cost_tokens`` and ``margin`` (null when nothing was charged).

    Raises:
        KeyError: an instance type is not on the rate card (see ``cost_breakdown`` for a
            LazyFrame).
    """
    price = lookup(pl.col("effect_type"), {e: int(p) for e, p in price_tokens.items()}, pl.Int64)
    out = (
        _breakdown(outputs, rate_card, profiles)
        .with_columns(tokens_charged=pl.when(pl.col(_VISIBLE)).then(price).otherwise(0).cast(pl.Int64))
        .drop(_VISIBLE)
        .with_columns(
            revenue_usd=pl.col("tokens_charged") * token_usd_rate, cost_tokens=pl.col("cost_usd") / token_usd_rate
        )
        .with_columns(margin=margin_expr("tokens_charged", "cost_tokens"))
    )
    return out if breakdown else out.drop(*(set(BREAKDOWN_COLUMNS) - set(FRAME_COLUMNS)))


# --- amortisation inputs, measured from history ---------------------------------------------------
def task_start() -> pl.Expr:
    """A task's start: ``finished_at`` minus its wall time ``duration_ms`` (null when either is)."""
    return pl.col("finished_at") - pl.duration(milliseconds=pl.col("duration_ms"))


def cold_starts(
    executions: pl.DataFrame, keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS, by: str = "provider_id"
) -> pl.DataFrame:
    """Each task with ``cold_start`` (Boolean): it started more than ``keep_warm_seconds``
    after every earlier task of its fleet (``by``) ended, so it paid a cold start (the rule
    ``measure_bursts`` splits bursts by). Rows without ``finished_at`` or ``duration_ms`` are
    dropped; the result is sorted by ``by`` and start time."""
    start = task_start()
    return (
        executions.filter(pl.col("finished_at").is_not_null() & pl.col("duration_ms").is_not_null())
        .sort(by, start)
        .with_columns(_prev_end=pl.col("finished_at").cum_max().shift(1).over(by))
        .with_columns(
            cold_start=pl.col("_prev_end").is_null()
            | (start > pl.col("_prev_end") + pl.duration(seconds=keep_warm_seconds))
        )
        .drop("_prev_end")
    )


def measure_bursts(
    executions: pl.DataFrame,
    keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS,
    by: str = "provider_id",
) -> pl.DataFrame:
    """Bursts and utilisation per fleet, measured from finished executions.

    A task runs from ``finished_at − duration_ms`` to ``finished_at``. A new burst starts
    when a task starts more than ``keep_warm_seconds`` after every earlier task of the fleet
    ended (the node was released in between). A burst keeps its node from its first start to
    its last end plus ``keep_warm_seconds`` (the node idles that long before release); cold
    starts are excluded (they are their own term).

    Args:
        executions: ``by``, ``finished_at`` (datetime), ``duration_ms`` (wall),
            ``compute_seconds`` (busy; null = 0). Rows without ``finished_at`` or
            ``duration_ms`` are ignored.
        keep_warm_seconds: see RateCard.
        by: what shares a node: ``provider_id`` (each provider its own fleet, e.g. a remote
            ComfyUI pool) or ``instance_type`` (local adapters sharing hosts) — measuring
            providers that share a host one by one would count the host's idle tail once
            per provider.

    Returns:
        One row per ``by`` value: ``tasks (Int64), bursts (Int64), tasks_per_burst,
        busy_seconds, provisioned_seconds, utilisation`` (busy / provisioned, clipped to
        MIN_UTILISATION..1).
    """
    by_burst = (
        cold_starts(executions, keep_warm_seconds, by)
        .rename({"cold_start": "_new"})
        .with_columns(_start=task_start())
        .with_columns(_burst=pl.col("_new").cast(pl.Int64).cum_sum().over(by))
        .group_by(by, "_burst")
        .agg(
            tasks=pl.len(),
            busy=pl.col("compute_seconds").fill_null(0.0).sum(),
            wall=(pl.col("finished_at").max() - pl.col("_start").min()).dt.total_microseconds() / 1e6,
        )
    )
    return (
        by_burst.group_by(by)
        .agg(
            tasks=pl.col("tasks").sum().cast(pl.Int64),
            bursts=pl.len().cast(pl.Int64),
            busy_seconds=pl.col("busy").sum(),
            provisioned_seconds=(pl.col("wall") + keep_warm_seconds).sum(),
        )
        .with_columns(
            tasks_per_burst=pl.col("tasks") / pl.col("bursts"),
            utilisation=(pl.col("busy_seconds") / pl.col("provisioned_seconds")).clip(MIN_UTILISATION, 1.0),
        )
        .sort(by)
    )


def profiles_from_registry(
    providers: Iterable[Mapping],
    bursts: pl.DataFrame | None = None,
    by: str = "provider_id",
) -> dict[str, ProviderCostProfile]:
    """Cost profiles from ``providers.yaml`` entries and (optionally) ``measure_bursts``.

    Args:
        providers: provider mappings with ``provider_id``, ``instance_type`` and an optional
            ``cost`` mapping (``partner_cost_usd_per_call``, ``cold_start_seconds``, and the
            proposed ``partner_usd_per_million_tokens``, ``partner_usd_per_credit``, ``spot``).
        bursts: ``measure_bursts`` output; providers without a row keep the defaults.
        by: the ``by`` the bursts were measured with (a provider field: ``provider_id`` or
            ``instance_type``).
    """
    measured = {r[by]: r for r in bursts.iter_rows(named=True)} if bursts is not None else {}
    out = {}
    for p in providers:
        cost = p.get("cost") or {}
        m = measured.get(p.get(by))
        out[p["provider_id"]] = ProviderCostProfile(
            cold_start_seconds=float(cost.get("cold_start_seconds", 0.0)),
            tasks_per_burst=max(1.0, float(m["tasks_per_burst"])) if m else 1.0,
            utilisation=float(m["utilisation"]) if m else 1.0,
            partner_usd_per_call=float(cost.get("partner_cost_usd_per_call", 0.0)),
            partner_usd_per_million_tokens=float(cost.get("partner_usd_per_million_tokens", 0.0)),
            partner_usd_per_credit=float(cost.get("partner_usd_per_credit", 0.0)),
            spot=bool(cost.get("spot", False)),
        )
    return out
