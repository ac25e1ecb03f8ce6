"""How a lake table is named in the asset graph, and the reads the graph cannot show.

Every lake table is an asset whose key is its path, ``[layer, name]``: the Delta IO manager
names silver tables after their asset key, and bronze and gold tables follow the same rule.
An asset that reads a table through the lake client declares it with ``deps=reads(...)``,
naming the same ``TableSpec`` its body reads, so the graph shows what each stage really reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from resources.schemas import (
    BOTTLENECK_ACTIONS,
    BOTTLENECK_CLASSIFICATIONS,
    ROUTING_MANIFESTS,
    RUN_OUTPUTS,
    TEST_BATCH,
    TableSpec,
)


def table_key(spec: TableSpec) -> dg.AssetKey:
    """The asset key of ``spec``'s table: ``[layer, name]`` (e.g. ``bronze/uploads``)."""
    return dg.AssetKey([spec.layer, spec.name])


def store_table_key(table: str) -> dg.AssetKey:
    """The asset key of a transactional store table (``resources/store/models.py``):
    ``store/<table>`` (e.g. ``store/ledger_entries``)."""
    return dg.AssetKey(["store", table])


def reads(*specs: TableSpec) -> list[dg.AssetKey]:
    """``deps`` for the tables an asset reads through the lake client."""
    return [table_key(s) for s in specs]


FEEDBACK_READS: Mapping[dg.AssetKey, frozenset[dg.AssetKey]] = {
    # M5 reserves tokens against the balance the store's ledger holds (credits, and what
    # earlier videos reserved and consumed), and routes by the manifest the economics job
    # built from earlier videos' executions. Both are downstream of test_batch itself (its job
    # is reserved into the ledger, its tasks costed into the next manifest), so declaring them
    # as deps would close a cycle, which an asset graph cannot hold: these reads are declared
    # here instead, and tests/test_lineage.py checks they are real reads that would cycle.
    table_key(TEST_BATCH): frozenset({store_table_key("ledger_entries"), table_key(ROUTING_MANIFESTS)}),
    # An effect run routes by the same manifest, which its own executions feed.
    table_key(RUN_OUTPUTS): frozenset({table_key(ROUTING_MANIFESTS)}),
    # The classifier shows what the action sensor did about a classification; the actions are
    # taken on the classifications, downstream of them.
    table_key(BOTTLENECK_CLASSIFICATIONS): frozenset({table_key(BOTTLENECK_ACTIONS)}),
}
"""Reads of a table downstream of the reading asset (state from earlier partitions), by
reading asset. The asset graph is acyclic, so these are the only reads not shown as deps."""
