"""Start the dashboard as a ``streamlit run`` child process (``effectlake dashboard`` and
``effectlake demo``)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from dashboards import auth
from resources.processes import ChildGroup

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501


def streamlit_command(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line for the app on ``host:port`` (headless, no usage
    statistics, no file watcher: the code does not change under a running dashboard)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def pick_port(preferred: int = DEFAULT_PORT, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free on ``host``, otherwise a free port the OS picks."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port")


def with_password(env: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """``env`` ready for the dashboard: in the embedded mode without a configured password,
    a one-off random password is made and its hash set (the password is returned, to be
    printed); otherwise ``env`` unchanged and None."""
    out = dict(env)
    if auth.AuthConfig.from_env(out).is_prod or out.get(auth.PASSWORD_HASH_ENV, "").strip():
        return out, None
    password = auth.new_password()
    out[auth.PASSWORD_HASH_ENV] = auth.hash_password(password)
    return out, password


def check(env: Mapping[str, str]) -> list[str]:
    """``auth.startup_problems`` for ``env``; prod reads OIDC from ``.streamlit/secrets.toml``
    next to the working directory or in the home folder (Streamlit's own locations)."""
    secrets = None
    for path in (Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"):
        if path.is_file():
            import tomllib

            secrets = tomllib.loads(path.read_text()).get("auth")
            break
    return auth.startup_problems(auth.AuthConfig.from_env(env, secrets))


def run(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> int:
    """Serve the dashboard until interrupted; returns streamlit's exit code (2 when the
    sign-in configuration is refused)."""
    env, password = with_password(os.environ)
    problems = check(env)
    if problems:
        print("effectlake dashboard refuses to start:\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    print(f"Dashboard: http://{host}:{port}" + (f"   password: {password}" if password else ""), flush=True)
    # Streamlit (and anything it starts) stops with this command: Ctrl-C, SIGTERM, kill -9.
    with ChildGroup(grace_s=10) as children:
        proc = children.spawn(streamlit_command(port, host), env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            return 130
