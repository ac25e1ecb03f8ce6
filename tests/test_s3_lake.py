"""The lake and the media store on an S3 API (the local moto server of the production profile):
Delta commits from concurrent writers lose nothing, and a conditional put is atomic there."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading

import boto3
import pytest
from botocore.exceptions import ClientError

from pipelines.cli.local_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, LocalS3
from resources.lake import Lake
from resources.media import MediaStore
from resources.s3 import ensure_buckets, s3_environment, unsafe_commit_settings
from resources.schemas import PIPELINE_EVENTS
from tests.event_rows import event_batch
from tests.s3_server import local_s3_process

ROUNDS = 12
ROWS_PER_ROUND = 3


def _point_at(server_url: str, monkeypatch) -> dict[str, str]:
    env = s3_environment(server_url, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ensure_buckets(["s3://lake/x"], env)
    return env


@pytest.fixture
def s3_env(monkeypatch):
    """A local S3 server in a thread of this process (boto3 clients only, see
    ``pipelines.cli.local_s3``); the AWS variables of this process point at it."""
    with LocalS3() as server:
        yield server, _point_at(server.endpoint_url, monkeypatch)


@pytest.fixture
def s3_process(monkeypatch, tmp_path):
    """The local S3 server as its own process (as ``effectlake demo-prod`` runs it), for
    delta-rs; yields the AWS environment that points at it."""
    with local_s3_process(tmp_path / "s3.log") as env:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        ensure_buckets(["s3://lake/x"], env)
        yield env


def _writer(name: str, uri: str, env: dict[str, str], barrier, errors) -> None:
    os.environ.update(env)
    lake = Lake(uri=uri)
    try:
        for r in range(ROUNDS):
            barrier.wait(timeout=60)  # both writers start each round's append together
            lake.append(PIPELINE_EVENTS, event_batch(f"{name}-{r}", ROWS_PER_ROUND))
    except Exception as exc:
        errors.put(f"{name}: {type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_two_processes_appending_to_one_table_on_s3_lose_no_commit(s3_process):
    env = s3_process
    uri = "s3://lake/root"
    Lake(uri=uri).ensure(PIPELINE_EVENTS)
    ctx = mp.get_context("spawn")
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(n, uri, env, barrier, errors)) for n in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    assert errors.empty(), errors.get()

    lake = Lake(uri=uri)
    rows = lake.read(PIPELINE_EVENTS)
    expected = {e for w in "ab" for r in range(ROUNDS) for e in event_batch(f"{w}-{r}", ROWS_PER_ROUND)["event_id"]}
    assert set(rows["event_id"]) == expected and rows.height == len(expected)
    # One commit per append after the create, each holding exactly its own rows: none replaced
    # another (a lost commit would leave fewer versions or a version with another's files).
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket="lake", Prefix=f"root/{PIPELINE_EVENTS.path}/_delta_log/")
    commits = sorted(o["Key"] for o in listing["Contents"] if o["Key"].endswith(".json"))
    assert len(commits) == 1 + 2 * ROUNDS
    added = 0
    for key in commits[1:]:
        actions = [json.loads(x) for x in s3.get_object(Bucket="lake", Key=key)["Body"].read().splitlines()]
        added += sum(json.loads(a["add"]["stats"])["numRecords"] for a in actions if "add" in a)
    assert added == len(expected)


def test_a_conditional_put_is_atomic_on_the_local_server(s3_env):
    """Eight writers race to create one commit file: exactly one wins, the object is the
    winner's, the others get 412 (what delta-rs relies on, as on AWS S3 and MinIO)."""
    server, _ = s3_env
    s3 = boto3.client("s3")
    results: dict[int, str] = {}
    start = threading.Barrier(8)

    def put(i: int) -> None:
        start.wait()
        try:
            s3.put_object(Bucket="lake", Key="t/_delta_log/00000000000000000001.json", Body=f"{i}", IfNoneMatch="*")
            results[i] = "ok"
        except ClientError as exc:
            results[i] = exc.response["Error"]["Code"]

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in results.items() if r == "ok"]
    assert len(winners) == 1 and sorted(set(results.values())) == ["PreconditionFailed", "ok"]
    body = s3.get_object(Bucket="lake", Key="t/_delta_log/00000000000000000001.json")["Body"].read()
    assert body == str(winners[0]).encode()
    assert server.refused_conditional_writes == 7


def test_media_store_round_trip_on_s3(s3_env, tmp_path):
    """MediaStore's S3 branch against the server: put, exists, read back."""
    media = MediaStore(uri="s3://lake/media")
    src = tmp_path / "a.bin"
    src.write_bytes(b"\x00video\xff" * 1000)
    media.put_file("raw/a.bin", str(src))
    assert media.exists("raw/a.bin") and not media.exists("raw/b.bin")
    with media.local_file("raw/a.bin") as path, open(path, "rb") as fh:
        assert fh.read() == src.read_bytes()


def test_unsafe_commit_settings_are_named():
    assert unsafe_commit_settings({}) == []
    assert unsafe_commit_settings({"AWS_S3_ALLOW_UNSAFE_RENAME": "false"}) == []
    problems = unsafe_commit_settings({"AWS_S3_ALLOW_UNSAFE_RENAME": "TRUE", "AWS_S3_LOCKING_PROVIDER": "dynamodb"})
    assert len(problems) == 2 and "AWS_S3_ALLOW_UNSAFE_RENAME" in problems[0] and "LOCKING" in problems[1]
