"""Application services: what the API and the admin dashboard do, one job per module, over
the plain I/O clients (no Dagster, no HTTP).

* ``uploads.py`` — upload intake: checks, media put, ``uploads`` row or rejection row.
* ``sniff.py`` — is this upload's first kilobyte a video container?
* ``accounts.py`` — users' token accounts: welcome credit, top-ups, balances.
* ``decisions.py`` — an admin decision recorded once (shared by approvals and recommendations).
* ``approvals.py`` — decisions on effects waiting to be published.
* ``recommendations.py`` — decisions on economic recommendations.
* ``routing_admin.py`` — the emergency routing override.
* ``ab_tests.py`` — A/B test requests and their results.
"""
