"""Orphan recovery: finds work stuck past its deadline and resolves it exactly once
(docs/architecture.md, "Recovery"). ``rules`` decides (pure, no Dagster), ``facts`` reads the
store, the lake and the Dagster instance, ``runs`` tells a live run from a dead one, ``sensor``
applies the decisions."""
