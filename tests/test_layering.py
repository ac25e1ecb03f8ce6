"""The layers keep to their imports: the API and the dashboard run without Dagster, and the
economics library touches no I/O client.

Each check imports in a fresh interpreter, so nothing a previous test imported can hide or
fake a dependency.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_MODULES = [
    "dashboards.app",
    *(f"dashboards.app_pages.{p.stem}" for p in sorted((ROOT / "dashboards" / "app_pages").glob("*.py"))),
]


# Prepended to every check: ``loaded(*roots)`` lists the loaded modules under those top-level
# packages and any ``dagster*`` package (dagster, dagster_shared, dagster_deltalake…).
LOADED = """
import json, sys

def loaded(*roots):
    return sorted(n for n in sys.modules if n.split(".")[0] in roots or n.split(".")[0].startswith("dagster"))
"""


def _fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter rooted at this checkout (after ``LOADED``); it prints
    a JSON object as its last line, returned here."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", LOADED + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _imports_of(path: Path) -> list[str]:
    """Modules a source file imports at its top level (what importing it would import)."""
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # ``from dashboards import state`` imports the submodule state
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_api_builds_and_serves_without_dagster(tmp_path):
    out = _fresh(f"""
        from fastapi.testclient import TestClient
        from api.app import create_app
        from resources.settings import Settings

        from tests.api_users import ADMIN_KEY, new_user

        root = {str(tmp_path)!r}
        app = create_app(Settings(LAKE_URI=root + "/lake", MEDIA_URI=root + "/media",
                                  MANIFEST_URI=root + "/manifest.json", DATABASE_URL="sqlite:///" + root + "/s.db",
                                  EFFECTLAKE_ADMIN_KEY=ADMIN_KEY))
        app.openapi()
        client = TestClient(app)
        user = new_user(client)
        statuses = [client.get("/healthz").status_code,
                    client.get(f"/v1/users/{{user['user_id']}}/balance", headers=user["headers"]).status_code,
                    # a refused upload: the intake service reads and writes the store
                    client.post("/v1/uploads", headers=user["headers"],
                                files={{"file": ("a.mp4", b"plain text", "video/mp4")}}).status_code]
        print(json.dumps({{"statuses": statuses, "loaded": loaded()}}))
    """)
    assert out["statuses"] == [200, 200, 415]
    assert out["loaded"] == [], f"the API imported Dagster: {out['loaded'][:10]}"


def test_dashboard_modules_import_without_dagster(tmp_path):
    # app.py and the pages run Streamlit calls at import, so what they import is imported
    # instead: every module their top-level import statements name (those that are modules).
    wanted = sorted(
        {name for module in DASHBOARD_MODULES for name in _imports_of(ROOT / (module.replace(".", "/") + ".py"))}
        | {
            "dashboards.data",
            "dashboards.sources",
            "dashboards.state",
            "dashboards.auth",
            "dashboards.widgets",
            "dashboards.charts",
            "dashboards.gate",
            "dashboards.launch",
        }
    )
    out = _fresh(f"""
        import importlib, importlib.util

        imported = []
        for name in {wanted!r}:
            if importlib.util.find_spec(name.rpartition(".")[0] or name) is None:
                continue
            try:
                spec = importlib.util.find_spec(name)
            except ModuleNotFoundError:
                spec = None
            if spec is not None:  # names like "dashboards.data.fmt_pct" are not modules
                importlib.import_module(name)
                imported.append(name)

        # and a read through the dashboard's own lake reader
        from dashboards.sources import LakeReader
        from resources.lake import Lake
        LakeReader(Lake(uri={str(tmp_path / "lake")!r})).costs("real")
        print(json.dumps({{"imported": imported, "loaded": loaded()}}))
    """)
    assert {
        "dashboards.state",
        "dashboards.widgets",
        "resources.services.approvals",
        "resources.services.recommendations",
    } <= set(out["imported"]), out["imported"]
    assert out["loaded"] == [], f"the dashboard imported Dagster: {out['loaded'][:10]}"


IO_PACKAGES = ("dagster", "deltalake", "boto3", "botocore", "redis", "resources")


def test_economics_imports_no_dagster_and_no_io_client():
    out = _fresh("""
        import importlib, pkgutil
        import economics

        names = [m.name for m in pkgutil.iter_modules(economics.__path__)]
        for name in names:
            importlib.import_module("economics." + name)
        print(json.dumps({"modules": names, "loaded": loaded("deltalake", "boto3", "botocore", "redis", "resources")}))
    """)
    assert len(out["modules"]) > 10
    assert out["loaded"] == [], f"economics imported {out['loaded'][:10]}"


def test_economics_source_names_no_io_package():
    # Also imports inside functions, which importing the modules would not run; a type-only
    # import under ``if TYPE_CHECKING:`` is allowed.
    offenders = []
    for path in sorted((ROOT / "economics").glob("*.py")):
        tree = ast.parse(path.read_text())
        type_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If)
            and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING"
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [
                f"{path.name}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in IO_PACKAGES or n.startswith("dagster")
            ]
    assert offenders == []
