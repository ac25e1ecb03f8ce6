"""The API keeps its OpenAPI contract: schemathesis (its CLI, a child process) runs every
operation of the live app's OpenAPI with generated valid and invalid input, without
credentials, as a user and as an admin → no server error, only status codes the OpenAPI
documents, bodies and content types matching the documented responses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from resources.settings import Settings
from tests.api_users import ADMIN, ADMIN_KEY, new_user
from tests.server import serve

pytestmark = pytest.mark.slow

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXAMPLES = 15  # per operation and phase: reaches every documented status path, bounded in time
SEED = 20261130  # reproducible in CI; change it to explore further


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app served on a free port with its own lake, media store and store; yields (base
    URL, request headers by credential)."""
    root = tmp_path_factory.mktemp("contract")
    app = create_app(
        Settings(
            LAKE_URI=str(root / "lake"),
            MEDIA_URI=str(root / "media"),
            MANIFEST_URI=str(root / "manifest.json"),
            DATABASE_URL=f"sqlite:///{root / 'store.db'}",
            EFFECTLAKE_ADMIN_KEY=ADMIN_KEY,
            EFFECTLAKE_MAX_UPLOAD_BYTES=1_000_000,
            # The run sends thousands of requests a minute from one address and key; the
            # limits themselves are tested in tests/test_api_ratelimit.py.
            EFFECTLAKE_RATE_LIMIT_IP_PER_MINUTE=1_000_000,
            EFFECTLAKE_RATE_LIMIT_KEY_PER_MINUTE=1_000_000,
        )
    )
    with serve(app) as base, httpx.Client(base_url=base) as client:
        user = new_user(client)
        yield base, {"anonymous": {}, "user": user["headers"], "admin": ADMIN}


@pytest.mark.parametrize("who", ["anonymous", "user", "admin"])
def test_every_operation_keeps_the_contract(live, who, tmp_path):
    base, headers = live
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    args = [cli, "run", f"{base}/openapi.json", "--checks", CHECKS, "--max-examples", str(EXAMPLES)]
    args += ["--seed", str(SEED), "--workers", "1", "--no-color", "--suppress-health-check", "all"]
    for name, value in headers[who].items():
        args += ["--header", f"{name}: {value}"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
