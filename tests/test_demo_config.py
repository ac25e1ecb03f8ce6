"""The Dagster instance config the demo writes must load: an invalid one only shows when
`dagster dev` refuses to start."""

import dagster as dg
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from pipelines.cli.demo import DAGSTER_YAML, IN_FLIGHT_QUERY
from pipelines.jobs import BACKGROUND, economics_job, intake_job, landing_job


def test_demo_instance_config_loads_without_a_pool_limit(tmp_path):
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
        # No one-slot pool: reservations are made under the store's row locks, in parallel.
        assert config.pool_config.default_pool_limit is None
        assert config.run_queue_config.max_concurrent_runs == 4


def test_demo_instance_keeps_one_run_per_video_and_one_background_run(tmp_path):
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        lane = [lim for lim in limits if lim["key"] == "effectlake/lane"]
        assert lane == [{"key": "effectlake/lane", "value": BACKGROUND["effectlake/lane"], "limit": 1}]
        # The hot path is checked often and evaluated in parallel.
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        assert instance.get_settings("sensors")["use_threads"] is True
    # The cycles carry the background lane and come last; a video's run does not; landing,
    # every request's first hop, comes first.
    assert economics_job.tags["effectlake/lane"] == "background"
    assert "effectlake/lane" not in (intake_job.tags or {})
    assert int(landing_job.tags["dagster/priority"]) > 0 > int(economics_job.tags["dagster/priority"])


def test_the_demos_in_flight_query_is_valid_for_the_installed_webserver():
    """The demo drains in-flight runs before it stops Dagster by asking the webserver's GraphQL
    API; a query this Dagster's schema does not accept would only fail at the demo's exit."""
    assert validate(create_schema().graphql_schema, parse(IN_FLIGHT_QUERY)) == []
