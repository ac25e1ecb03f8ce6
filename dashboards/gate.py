"""The sign-in gate every page passes through (app.py calls ``require_admin`` before
``st.navigation`` runs a page, so no page renders for a visitor who is not signed in).
Configuration and hashing: ``dashboards/auth.py``."""

from __future__ import annotations

import time
from collections.abc import Mapping

import streamlit as st

from dashboards import auth
from resources.settings import get_settings

ADMIN_KEY = "_effectlake_admin"
FAILURES_KEY = "_effectlake_signin_failures"
# After this many wrong passwords in a session each further attempt waits, so guessing
# through the form is slow (the hash itself makes offline guessing slow).
FREE_ATTEMPTS = 3
PENALTY_S = 2.0


def _auth_secrets() -> Mapping | None:
    """The ``[auth]`` section of the Streamlit secrets, or None without a secrets file."""
    if not st.secrets.load_if_toml_exists():
        return None
    section = st.secrets.get("auth")
    return section.to_dict() if hasattr(section, "to_dict") else section


def config() -> auth.AuthConfig:
    """The sign-in configuration of this process (settings + secrets)."""
    return auth.AuthConfig.from_settings(get_settings(), _auth_secrets())


def refuse_if_misconfigured(cfg: auth.AuthConfig) -> None:
    """Stop the app with the reasons when ``cfg`` must not serve (``auth.startup_problems``)."""
    problems = auth.startup_problems(cfg)
    if problems:
        st.error("The dashboard refuses to start:\n\n" + "\n".join(f"- {p}" for p in problems))
        st.stop()


def require_admin() -> str:
    """Return the signed-in admin's name (an e-mail in prod); otherwise show the sign-in
    and stop the script run."""
    cfg = config()
    refuse_if_misconfigured(cfg)
    return _oidc(cfg) if cfg.is_prod else _password(cfg)


def _oidc(cfg: auth.AuthConfig) -> str:
    if not st.user.is_logged_in:
        st.title("effectlake admin")
        st.button("Sign in", type="primary", on_click=st.login)
        st.stop()
    email = st.user.get("email")
    if not auth.is_admin_email(email, cfg.admin_emails, st.user.get("email_verified")):
        st.warning(f"{email or 'This account'} is not an effectlake admin.")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    return str(email).lower()


def _check_password(cfg: auth.AuthConfig) -> None:
    # Runs as the form's callback, before the rerun that shows the result.
    failures = st.session_state.get(FAILURES_KEY, 0)
    if failures >= FREE_ATTEMPTS:
        time.sleep(PENALTY_S)
    password = st.session_state.get("signin_password", "")
    if cfg.password_hash and auth.verify_password(password, cfg.password_hash):
        name = st.session_state.get("signin_name", "").strip() or "admin"
        st.session_state[ADMIN_KEY] = name
        st.session_state[FAILURES_KEY] = 0
    else:
        st.session_state[FAILURES_KEY] = failures + 1
    st.session_state["signin_password"] = ""  # never keep the password in the session


def _password(cfg: auth.AuthConfig) -> str:  # noqa: RET503 - every other path ends in st.stop() (NoReturn)
    if st.session_state.get(ADMIN_KEY):
        return st.session_state[ADMIN_KEY]
    st.title("effectlake admin")
    if not cfg.password_hash:
        st.warning(
            f"No admin password is configured. Set {auth.PASSWORD_HASH_ENV} "
            "(make one with `python -m dashboards.auth hash`), or start the dashboard with "
            "`effectlake dashboard`, which prints a one-off password."
        )
        st.stop()
    with st.form("signin"):
        st.text_input("Your name (recorded with your decisions)", key="signin_name")
        st.text_input("Admin password", type="password", key="signin_password")
        st.form_submit_button("Sign in", type="primary", key="signin_submit", on_click=_check_password, args=(cfg,))
    if st.session_state.get(FAILURES_KEY):
        st.warning("Wrong password.")
    st.stop()


def sign_out() -> None:
    """Forget the sign-in of this session (password) or the identity cookie (OIDC)."""
    if auth.AuthConfig.from_settings(get_settings()).is_prod:
        st.logout()
    else:
        st.session_state.pop(ADMIN_KEY, None)
