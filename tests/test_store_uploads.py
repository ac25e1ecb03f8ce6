"""Uploads in the store: random video ids, de-duplication within a workspace only, owner-only
reads, presigned completion, sanitized filenames, rejections."""

from __future__ import annotations

import hashlib
import threading

import pytest

from resources.filenames import MAX_FILENAME_BYTES, sanitize_filename
from resources.store.errors import InvalidInput, UploadNotFound
from tests.store_rows import pending_upload

pytest_plugins = ["tests.store_fixtures"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _upload(store, user, data: bytes, name="clip.mp4", media_key=None):
    return store.create_upload(
        user["user_id"],
        filename=name,
        content_type="video/mp4",
        sha256=_sha(data),
        bytes_=len(data),
        media_key=media_key or f"raw/{_sha(data)[:8]}-{user['user_id']}.mp4",
    )


def test_video_ids_are_random_and_dedup_stays_inside_a_workspace(store, new_user):
    alice, colleague = new_user(), new_user()
    outsider = new_user(workspace_id=store.create_workspace("other")["workspace_id"])
    data = b"the same bytes"

    first = _upload(store, alice, data)
    assert first.created and not first.duplicate
    video = first.upload
    assert video["video_id"].startswith("v_") and _sha(data)[:16] not in video["video_id"]
    assert video["workspace_id"] == alice["workspace_id"] and video["status"] == "uploaded"

    again = _upload(store, alice, data)  # same user, same bytes: the existing upload
    assert not again.created and again.duplicate and again.upload == video

    shared = _upload(store, colleague, data)  # same workspace: own row, shared media object
    assert shared.created and shared.duplicate
    assert shared.upload["video_id"] != video["video_id"]
    assert shared.upload["duplicate_of"] == video["video_id"]
    assert shared.upload["media_key"] == video["media_key"]
    assert shared.upload["user_id"] == colleague["user_id"]

    foreign = _upload(store, outsider, data)  # another tenant learns nothing
    assert foreign.created and not foreign.duplicate
    assert foreign.upload["duplicate_of"] is None and foreign.upload["media_key"] != video["media_key"]

    # Reads are owner-only, and the miss is the same as for an id that does not exist.
    assert store.upload(video["video_id"], alice["user_id"]) == video
    for reader in (colleague, outsider):
        with pytest.raises(UploadNotFound):
            store.upload(video["video_id"], reader["user_id"])
    with pytest.raises(UploadNotFound):
        store.upload("v_missing", alice["user_id"])
    assert [u["video_id"] for u in store.uploads(alice["user_id"])] == [video["video_id"]]


def test_concurrent_uploads_of_the_same_bytes_make_one_row_per_user(store, new_user):
    users = [new_user() for _ in range(3)]
    data = b"raced bytes"
    results, errors = [], []

    def send(user):
        try:
            results.append(_upload(store, user, data))
        except Exception as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(u,)) for u in users for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.created for r in results) == 3  # one new row per user
    rows = {u["user_id"]: store.uploads(u["user_id"]) for u in users}
    assert all(len(r) == 1 for r in rows.values())
    originals = [r[0] for r in rows.values() if r[0]["duplicate_of"] is None]
    assert len(originals) == 1
    assert {r[0]["media_key"] for r in rows.values()} == {originals[0]["media_key"]}


def test_presigned_upload_is_completed_once_with_its_hash(store, new_user):
    user, colleague = new_user(), new_user()
    pending = pending_upload(store, user["user_id"], "a.mp4")
    assert pending["status"] == "pending" and pending["sha256"] is None
    with pytest.raises(UploadNotFound):  # not the colleague's upload
        store.complete_upload(
            pending["video_id"], colleague["user_id"], sha256=_sha(b"p"), bytes_=1, media_key="raw/p.mp4"
        )
    done = store.complete_upload(
        pending["video_id"], user["user_id"], sha256=_sha(b"p"), bytes_=1, media_key="raw/p.mp4"
    )
    assert done.created and done.upload["status"] == "uploaded" and done.upload["media_key"] == "raw/p.mp4"
    with pytest.raises(UploadNotFound):  # completed once
        store.complete_upload(pending["video_id"], user["user_id"], sha256=_sha(b"p"), bytes_=1, media_key="raw/p.mp4")
    # A second presigned upload of the same bytes by the same user folds into the first.
    again = pending_upload(store, user["user_id"], "b.mp4")
    folded = store.complete_upload(
        again["video_id"], user["user_id"], sha256=_sha(b"p"), bytes_=1, media_key="raw/p2.mp4"
    )
    assert not folded.created and folded.upload["video_id"] == pending["video_id"]
    with pytest.raises(UploadNotFound):
        store.upload(again["video_id"])
    assert store.set_upload_status(pending["video_id"], "accepted")["status"] == "accepted"
    with pytest.raises(InvalidInput):
        store.set_upload_status(pending["video_id"], "exploded")


def test_upload_fields_are_validated_and_filenames_sanitized(store, new_user):
    user = new_user()
    row = store.create_upload(
        user["user_id"],
        filename="../../etc/\x00pass\u202ewd.mp4",
        content_type="video/mp4",
        sha256=_sha(b"x"),
        bytes_=1,
        media_key="k",
    ).upload
    assert row["filename"] == "passwd.mp4"
    for bad in ({"sha256": "ABC"}, {"bytes_": -1}, {"bytes_": True}, {"source": "ftp"}, {"status": "gone"}):
        fields = {
            "filename": "f",
            "content_type": "video/mp4",
            "sha256": _sha(b"y"),
            "bytes_": 1,
            "media_key": "k",
        } | bad
        with pytest.raises(InvalidInput):
            store.create_upload(user["user_id"], **fields)


def test_rejections_are_recorded_once_per_id(store, new_user):
    user = new_user()
    fields = {
        "user_id": user["user_id"],
        "workspace_id": user["workspace_id"],
        "filename": "a/b.txt",
        "content_type": "text/plain",
        "bytes_": 5,
        "http_status": 415,
        "code": "unsupported_media_type",
        "reason": "not a video",
        "rejection_id": "rej-fixed-" + user["user_id"],
    }
    first = store.record_rejection(**fields)
    assert first["filename"] == "b.txt" and first["http_status"] == 415
    assert store.record_rejection(**fields)["seq"] == first["seq"]
    anonymous = store.record_rejection(**(fields | {"user_id": None, "workspace_id": None, "rejection_id": None}))
    assert anonymous["rejection_id"] != first["rejection_id"] and anonymous["user_id"] is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("clip.mp4", "clip.mp4"),
        ("C:\\Users\\me\\clip.mp4", "clip.mp4"),
        ("/etc/passwd", "passwd"),
        ("..", "upload"),
        (".hidden.mp4", "hidden.mp4"),
        ("a\x00b\x1f\x7fc\u0085.mp4", "abc.mp4"),
        ("evil\u202egnp.mp4", "evilgnp.mp4"),
        ("  spaced  .mp4 ", "spaced  .mp4"),
        ("", "upload"),
        (None, "upload"),
        ("e\u0301.mp4", "\u00e9.mp4"),  # NFC
    ],
)
def test_sanitize_filename(raw, clean):
    assert sanitize_filename(raw) == clean


def test_sanitize_filename_keeps_the_extension_within_the_byte_limit():
    name = sanitize_filename("é" * 300 + ".mp4")
    assert name.endswith(".mp4") and len(name.encode()) <= MAX_FILENAME_BYTES
    assert len(sanitize_filename("x" * 1000).encode()) == MAX_FILENAME_BYTES


def test_a_run_input_sent_again_as_an_example_becomes_one_under_a_new_seq(store, new_user):
    alice = new_user()
    data = b"a video first sent with an effect run"
    fields = {"filename": "in.mp4", "content_type": "video/mp4", "sha256": _sha(data), "bytes_": len(data)}
    run_input = store.create_upload(alice["user_id"], media_key="raw/in.mp4", source="run", **fields).upload
    again_as_input = store.create_upload(alice["user_id"], media_key="raw/in.mp4", source="run", **fields)
    assert not again_as_input.created and again_as_input.upload == run_input

    example = _upload(store, alice, data, name="example.mp4")  # the same bytes, as an example
    assert example.created and not example.duplicate
    row = example.upload
    assert (row["video_id"], row["media_key"], row["source"], row["filename"]) == (
        run_input["video_id"],
        "raw/in.mp4",
        "upload",
        "example.mp4",
    )
    assert row["seq"] > run_input["seq"]  # landed again: the landing's seq cursor sees it

    # A presigned upload of run-input bytes completes into the same promotion.
    other = b"another run input"
    sent = store.create_upload(
        alice["user_id"],
        filename="x.mp4",
        content_type="video/mp4",
        sha256=_sha(other),
        bytes_=5,
        media_key="k2",
        source="run",
    ).upload
    pending = pending_upload(store, alice["user_id"], "p.mp4")
    done = store.complete_upload(pending["video_id"], alice["user_id"], sha256=_sha(other), bytes_=5, media_key="k3")
    assert done.created and done.upload["video_id"] == sent["video_id"]
    assert done.upload["seq"] > pending["seq"]  # the pending row's seq was landed: a new one is
    assert (done.upload["source"], done.upload["status"], done.upload["filename"]) == ("presign", "uploaded", "p.mp4")
    with pytest.raises(UploadNotFound):
        store.upload(pending["video_id"])
