"""The effectlake admin dashboard (Streamlit): ``effectlake dashboard [--port N]``.

Modules, one job each:

* ``app.py`` — the entry script: sign-in gate, sidebar, ``st.navigation`` over ``app_pages/``.
* ``app_pages/*.py`` — one thin page each (margins, providers, routing, recommendations,
  approval queue, bottlenecks & alerts).
* ``auth.py`` — sign-in configuration, password hashes, start-up checks (pure Python).
* ``gate.py`` — the Streamlit side of sign-in (password form or ``st.login``).
* ``sources.py`` — reads of the lake (DuckDB over execution_costs, Polars for the rest).
* ``data.py`` — data shaping for the pages (pure Polars, built on ``economics``).
* ``state.py`` — the request context and the cached views, keyed by Delta table versions.
* ``widgets.py`` / ``charts.py`` — the shared Streamlit pieces and Altair charts.
* ``launch.py`` — ``streamlit run`` as a child process, one-off passwords.
"""
