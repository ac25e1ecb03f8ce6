"""The Dagster instance config the demo writes must load: an invalid one only shows when
`dagster dev` refuses to start."""

import dagster as dg
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from pipelines.cli.demo import DAGSTER_YAML, IN_FLIGHT_QUERY


def test_demo_instance_config_loads_without_a_pool_limit(tmp_path):
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
        # No one-slot pool: reservations are made under the store's row locks, in parallel.
        assert config.pool_config.default_pool_limit is None
        assert config.run_queue_config.max_concurrent_runs == 3


def test_the_demos_in_flight_query_is_valid_for_the_installed_webserver():
    """The demo drains in-flight runs before it stops Dagster by asking the webserver's GraphQL
    API; a query this Dagster's schema does not accept would only fail at the demo's exit."""
    assert validate(create_schema().graphql_schema, parse(IN_FLIGHT_QUERY)) == []
