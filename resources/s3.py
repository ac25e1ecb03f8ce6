"""The S3 side of the production profile: how every process reaches the object store.

The lake (delta-rs, Polars) and the media store (boto3) read the standard AWS environment
variables, so one set of variables points the API, the Dagster webserver, daemon, code
location and run workers, and the dashboard at the same store, with no storage options in
code: ``AWS_ENDPOINT_URL`` (MinIO or a local server; unset for AWS S3), ``AWS_REGION``,
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or any other credential source the AWS
SDKs know: a web-identity token on Kubernetes, an instance role), and ``AWS_ALLOW_HTTP=true``
for a plain-http endpoint (delta-rs refuses http otherwise).

Concurrent Delta commits: delta-rs 1.x commits version N by writing ``_delta_log/N.json``
with ``If-None-Match: *`` (S3 conditional writes, GA on AWS since 2024-08; MinIO supports
them); a writer that loses the race gets 412, reloads, checks for conflicts and retries at
N+1 (``resources.lake`` adds retries on conflicts). delta-rs 1.0 removed the DynamoDB locking
provider, so ``AWS_S3_LOCKING_PROVIDER`` no longer does anything, and
``AWS_S3_ALLOW_UNSAFE_RENAME=true`` would switch the safety off: ``unsafe_commit_settings``
names both so the production profile refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping

UNSAFE_RENAME = "AWS_S3_ALLOW_UNSAFE_RENAME"
LOCKING_PROVIDER = "AWS_S3_LOCKING_PROVIDER"


def s3_environment(endpoint_url: str | None, access_key_id: str, secret_access_key: str, region: str) -> dict[str, str]:
    """Environment variables that point delta-rs, Polars and boto3 at one S3 endpoint.

    Args:
        endpoint_url: ``http(s)://host:port`` of an S3-compatible server; None for AWS S3.
        access_key_id, secret_access_key: the credential pair.
        region: the bucket region (``us-east-1`` for MinIO and moto).

    Returns:
        ``AWS_*`` variables, with ``AWS_ALLOW_HTTP=true`` when the endpoint is plain http.
    """
    env = {
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,  # boto3's name for it
    }
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
        if endpoint_url.startswith("http://"):
            env["AWS_ALLOW_HTTP"] = "true"
    return env


def bucket_of(uri: str) -> str:
    """The bucket of ``s3://bucket[/prefix]``.

    Raises:
        ValueError: not an ``s3://`` URI, or no bucket.
    """
    if not uri.startswith("s3://") or not uri[len("s3://") :].split("/", 1)[0]:
        raise ValueError(f"not an s3://bucket[/prefix] URI: {uri!r}")
    return uri[len("s3://") :].split("/", 1)[0]


def ensure_buckets(uris: list[str], environ: Mapping[str, str]) -> list[str]:
    """Create the buckets of the ``s3://`` URIs among ``uris`` that do not exist yet, with the
    endpoint and credentials of ``environ`` (``s3_environment``). Returns the buckets created.

    Raises:
        botocore.exceptions.ClientError: the store refused (e.g. no permission to create).
    """
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3",
        endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
        region_name=environ.get("AWS_REGION") or None,
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY") or None,
    )
    created = []
    for bucket in dict.fromkeys(bucket_of(u) for u in uris if u.startswith("s3://")):
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            s3.create_bucket(Bucket=bucket)
            created.append(bucket)
    return created


def unsafe_commit_settings(environ: Mapping[str, str]) -> list[str]:
    """The variables of ``environ`` that would make concurrent Delta commits on S3 unsafe or
    that no longer do what their name says (see the module docstring); empty when safe."""
    problems = []
    if environ.get(UNSAFE_RENAME, "").strip().lower() in ("1", "true", "yes"):
        problems.append(f"{UNSAFE_RENAME}=true turns off conditional commits: concurrent writers can lose commits")
    if environ.get(LOCKING_PROVIDER, "").strip():
        problems.append(f"{LOCKING_PROVIDER} is ignored by delta-rs 1.x (commits use S3 conditional writes); unset it")
    return problems
