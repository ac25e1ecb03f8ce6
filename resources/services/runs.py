"""Effect runs as a user asks for them: a published gallery effect applied to the user's own
video, paid in tokens (``POST /v1/effects/{slug}/runs``; the run itself is Dagster work,
``assets/runs``).

In order: the slug must name a published effect (its pinned revision,
``resources.services.gallery.pinned_revision``, gives the effect type, the parameters and the
base price; the price reserved is the effective price when the run is accepted,
``economics.pricing.run_price``: the effect type's runtime price parameter when one is in
force); the user's ``params`` must be within the effect's declared ranges (``data/effects.yaml``
``param_ranges``); the balance must cover the price (checked before any byte is read); the
video is either an upload of theirs (by ``video_id``, its bytes stored) or a new upload that
passes the same intake as ``POST /v1/uploads`` (``resources.services.uploads``: content type,
size, container sniff; stored content-addressed, recorded with source ``run`` so no creation
job starts for it). Then the run is queued and its price reserved in one store transaction
(``resources.store.runs.create_run``), with the workspace's GPU admission.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from economics.budget import UserQuotaExceeded
from resources.catalog import Catalog
from resources.lake import Lake
from resources.media import MediaStore
from resources.services.gallery import Revision, pinned_revision
from resources.services.uploads import IncomingUpload, receive_upload
from resources.store.client import Store
from resources.store.models import RUN_SOURCE


class RunRefused(Exception):
    """A run refused at the door: HTTP ``status``, machine ``code``, readable ``reason``."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


def parse_params(text: str | None) -> dict:
    """The ``params`` form field: a JSON object (None or blank = none).

    Raises:
        RunRefused: 422 ``invalid_params`` when it is not a JSON object.
    """
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise RunRefused(422, "invalid_params", 'params must be a JSON object, e.g. {"strength": 0.8}') from None
    if not isinstance(value, dict):
        raise RunRefused(422, "invalid_params", 'params must be a JSON object, e.g. {"strength": 0.8}')
    return value


def check_params(effect_type: str, ranges: Mapping[str, tuple[int | float, int | float]], params: dict) -> dict:
    """``params`` when every one is a parameter the effect declares a range for and lies in
    it (bounds inclusive; an integer range takes whole numbers only, returned as ``int``).

    Args:
        ranges: ``Catalog.param_ranges(effect_type)``.

    Raises:
        RunRefused: 422 ``unknown_parameter`` (no declared range: not settable),
            ``invalid_parameter`` (not a finite number, or not an integer for an integer
            range), ``parameter_out_of_range``; the reason names the parameter and its range.
    """
    settable = ", ".join(f"{n} [{lo}, {hi}]" for n, (lo, hi) in ranges.items()) or "none"
    checked: dict = {}
    for name, value in params.items():
        if name not in ranges:
            raise RunRefused(
                422, "unknown_parameter", f"{effect_type} has no parameter {name!r} you can set (settable: {settable})."
            )
        lo, hi = ranges[name]
        integral = isinstance(lo, int) and isinstance(hi, int)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RunRefused(422, "invalid_parameter", f"{name} must be a number in [{lo}, {hi}], not {value!r}.")
        if integral and not float(value).is_integer():
            raise RunRefused(422, "invalid_parameter", f"{name} must be a whole number in [{lo}, {hi}], not {value}.")
        if not lo <= value <= hi:
            raise RunRefused(
                422, "parameter_out_of_range", f"{name} = {value} is outside its range [{lo}, {hi}] for {effect_type}."
            )
        checked[name] = int(value) if integral else value
    return checked


@dataclass(frozen=True)
class RunInput:
    """The video a run renders: the user's upload, its bytes' sha256 and media key."""

    video_id: str
    sha256: str
    media_key: str


def existing_input(store: Store, user_id: str, video_id: str) -> RunInput:
    """The user's upload ``video_id`` as a run's input.

    Raises:
        UploadNotFound: no such upload of the user (404: ids leak nothing).
        RunRefused: 422 ``video_rejected`` (M1 refused it), 409 ``upload_incomplete`` (a
            presigned upload whose bytes never arrived).
    """
    row = store.upload(video_id, user_id)
    if row["status"] == "rejected":
        raise RunRefused(422, "video_rejected", f"Video {video_id} was rejected at intake; it cannot be run.")
    if row["sha256"] is None or row["media_key"] is None:
        raise RunRefused(409, "upload_incomplete", f"Video {video_id} has no bytes yet: complete its upload first.")
    return RunInput(video_id, row["sha256"], row["media_key"])


def new_input(store: Store, media: MediaStore, upload: IncomingUpload, max_upload_bytes: int) -> RunInput:
    """A video sent with the run, through the upload intake (``receive_upload``: the same
    checks, storage and rejection records as ``POST /v1/uploads``), as source ``run``.

    Raises:
        UploadRejected: as ``receive_upload`` (recorded in ``upload_rejections``).
    """
    accepted = receive_upload(store, media, replace(upload, source=RUN_SOURCE), max_upload_bytes=max_upload_bytes)
    return existing_input(store, upload.user_id, accepted.video_id)


@dataclass(frozen=True)
class RunRequest:
    """What a user asked for: the effect's ``slug``, the user's ``params`` (parsed, not yet
    checked) and their video: ``video_id`` of an upload of theirs, or ``upload`` (a new one)."""

    slug: str
    params: dict
    video_id: str | None = None
    upload: IncomingUpload | None = None


def submit_run(
    store: Store,
    lake: Lake,
    media: MediaStore,
    catalog: Catalog,
    user_id: str,
    request: RunRequest,
    *,
    max_upload_bytes: int,
    admit: Callable[[dict], None] | None = None,
) -> tuple[dict, Revision]:
    """Queue the run ``request`` of ``user_id`` and reserve its price (module docstring).

    Returns:
        (the queued ``effect_runs`` row, the revision it is pinned to).

    Raises:
        RunRefused: 404 ``effect_not_found``; 422 on parameters (``check_params``) or a video
            named both ways or not at all (``video_required``); as ``existing_input``.
        economics.budget.UserQuotaExceeded: the balance cannot cover the price (402).
        UploadRejected, UploadNotFound: the video (``new_input``, ``existing_input``).
        Whatever ``admit`` raises (429 / 403 GPU admission).
    """
    revision = pinned_revision(store, lake, request.slug)
    if revision is None:
        raise RunRefused(404, "effect_not_found", f"No published effect {request.slug!r}.")
    params = check_params(revision.effect_type, catalog.param_ranges(revision.effect_type), request.params)
    if (request.video_id is None) == (request.upload is None):
        raise RunRefused(422, "video_required", "Name your video: a video_id of your uploads, or a file (not both).")
    # The price in force now (the revision's, or the effect type's runtime price parameter);
    # create_run decides it again in the reservation's own transaction.
    price = store.run_price(revision.effect_type, revision.price_tokens).tokens
    available = store.balance(user_id)["available"]
    if price > available:  # before any byte is read
        raise UserQuotaExceeded(user_id, price, available)
    if request.upload is not None:
        video = new_input(store, media, request.upload, max_upload_bytes)
    else:
        assert request.video_id is not None  # one of the two, checked above
        video = existing_input(store, user_id, request.video_id)
    run = store.create_run(
        user_id,
        slug=revision.slug,
        revision_id=revision.revision_id,
        content_hash=revision.content_hash,
        effect_type=revision.effect_type,
        params=revision.params | params,
        video_id=video.video_id,
        input_sha256=video.sha256,
        input_key=video.media_key,
        revision_price_tokens=revision.price_tokens,
        admit=admit,
    )
    return run, revision
