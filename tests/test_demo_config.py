"""The Dagster instance config the demo writes must load: an invalid one only shows when
`dagster dev` refuses to start."""

import dagster as dg

from pipelines.cli.demo import DAGSTER_YAML


def test_demo_instance_config_loads_with_the_ledger_pool_limit(tmp_path):
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.run_queue_config.max_concurrent_runs == 3
