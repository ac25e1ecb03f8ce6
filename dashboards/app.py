"""effectlake admin dashboard (Streamlit): ``effectlake dashboard [--port N]``.

Every run: sign-in gate → sidebar (real / simulated filter) → the chosen page of
``app_pages/`` (each opens with ``widgets.page``: title, messages, HUD). The gate runs
before ``st.navigation`` hands over to a page, so no page is reachable without signing in.
Settings come from the environment (``LAKE_URI``, ``MEDIA_URI``, ``MANIFEST_URI``,
``EFFECTLAKE_*``; see resources/settings.py and dashboards/auth.py).
"""

from pathlib import Path

import streamlit as st

from dashboards import gate, state, widgets
from resources.settings import get_settings

PAGES = Path(__file__).resolve().parent / "app_pages"

st.set_page_config(page_title="effectlake admin", page_icon=":material/movie_filter:", layout="wide")

admin = gate.require_admin()
now = state.now_minute()
source = widgets.sidebar(admin, now)
ctx = state.Context(settings=get_settings(), source=source, now=now, admin=admin)
state.set_current(ctx)

page = st.navigation(
    [
        st.Page(PAGES / "margins.py", title="Margins", icon=":material/payments:", default=True),
        st.Page(PAGES / "providers.py", title="Providers", icon=":material/dns:"),
        st.Page(PAGES / "routing.py", title="Routing", icon=":material/alt_route:"),
        st.Page(PAGES / "recommendations.py", title="Recommendations", icon=":material/lightbulb:"),
        st.Page(PAGES / "approvals.py", title="Approval queue", icon=":material/fact_check:"),
        st.Page(PAGES / "bottlenecks.py", title="Bottlenecks & alerts", icon=":material/warning:"),
    ]
)
page.run()
