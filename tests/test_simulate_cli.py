"""`effectlake simulate` writes marked history; the economics job keeps it apart from real
money and never routes on it."""

import dagster as dg
import polars as pl
import pytest

from pipelines.cli.main import main
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, MARGINALITY_WINDOWS, PROVIDER_EFFECT_MATRIX


def test_simulated_history_is_marked_and_never_routes(settings, instance, monkeypatch):
    monkeypatch.setenv("LAKE_URI", settings.lake_uri)
    assert main(["simulate", "--days", "1", "--seed", "5", "--per-hour", "50"]) == 0
    lake = Lake(uri=settings.lake_uri)
    events = lake.read(EXECUTION_EVENTS)
    assert events.height > 1000
    assert main(["simulate", "--days", "1", "--seed", "6", "--per-hour", "50"]) == 0
    assert build_definitions(settings).resolve_job_def("economics_job").execute_in_process(instance=instance).success
    costs = lake.read(EXECUTION_COSTS)
    assert set(costs["source"]) == {"simulated"}
    windows = lake.read(MARGINALITY_WINDOWS)
    assert set(windows["source"]) == {"simulated"}
    manifest = ManifestStore(uri=settings.manifest_uri).read()
    # Routing reads real executions only: with none, every entry stands on priors.
    assert all(e["executions"] == 0 for entries in manifest["effects"].values() for e in entries)
    assert costs.filter(pl.col("status") == "succeeded")["tokens_charged"].sum() > 0


def test_provider_matrix_keeps_simulated_apart(settings, instance, monkeypatch):
    monkeypatch.setenv("LAKE_URI", settings.lake_uri)
    assert main(["simulate", "--days", "1", "--seed", "7", "--per-hour", "40"]) == 0
    defs = build_definitions(settings)
    assert defs.resolve_job_def("economics_job").execute_in_process(instance=instance).success
    matrix = defs.get_assets_def(["gold", "provider_effect_matrix"])
    assert dg.materialize([matrix], resources=defs.resources, instance=instance, selection=[matrix.key]).success
    sources = set(Lake(uri=settings.lake_uri).read(PROVIDER_EFFECT_MATRIX)["source"])
    assert sources == {"simulated"}  # no real executions, no benchmark: nothing else appears


def test_simulate_plants_faults_and_refuses_unknown_ones(settings, monkeypatch, capsys):
    monkeypatch.setenv("LAKE_URI", settings.lake_uri)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    assert (
        main(["simulate", "--days", "0.5", "--seed", "3", "--per-hour", "80", "--inject", "throttling:opencv-cartoon"])
        == 0
    )
    assert "fault throttling on opencv-cartoon" in capsys.readouterr().out
    events = Lake(uri=settings.lake_uri).read(EXECUTION_EVENTS)
    throttled = events.filter(pl.col("error_class") == "Throttled")
    assert throttled.height > 0 and set(throttled["provider_id"]) == {"opencv-cartoon"}
    with pytest.raises(SystemExit) as refused:
        main(["simulate", "--days", "1", "--inject", "meltdown"])
    assert refused.value.code == 2 and "unknown fault 'meltdown'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--days", "1", "--inject", "throttling:no-such-provider"])
