"""Manifest read latency, p50 / p99, for the file and Redis backends, side by side.

Usage: ``python bench/manifest_read.py [--reads N] [--redis redis://127.0.0.1:6379/15]``.
The manifest is a realistic one: every effect type × its providers from data/, built by the
same code the economics job uses.
"""

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import polars as pl

from economics.routing import build_manifest
from resources.manifest_store import ManifestStore
from resources.providers.client import ProviderRegistry
from resources.settings import get_settings


def measure(store: ManifestStore, reads: int) -> np.ndarray:
    for _ in range(200):  # warm connections and caches
        store.read()
    out = np.empty(reads)
    for i in range(reads):
        t = time.perf_counter_ns()
        store.read()
        out[i] = time.perf_counter_ns() - t
    return out / 1000.0  # µs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reads", type=int, default=20_000)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = ap.parse_args()
    active = ProviderRegistry(path=get_settings().providers_path).registry().active_by_effect()
    manifest = build_manifest(pl.DataFrame(), active, datetime.now(UTC))
    with tempfile.TemporaryDirectory() as d:
        stores = {
            "file": ManifestStore(uri=f"{d}/routing_manifest.json"),
            "redis": ManifestStore(uri=args.redis, key_prefix=f"bench-{uuid.uuid4().hex}"),
        }
        print(
            f"manifest: {sum(len(v) for v in manifest['effects'].values())} entries, "
            f"{len(str(manifest))} chars; {args.reads} reads per backend"
        )
        for name, store in stores.items():
            store.publish(manifest)
            lat = measure(store, args.reads)
            print(
                f"{name:>6}: p50 {np.percentile(lat, 50):7.1f} µs   p99 {np.percentile(lat, 99):7.1f} µs   "
                f"max {lat.max():8.1f} µs"
            )
        r = stores["redis"]._redis()
        for key in r.scan_iter(f"{stores['redis'].key_prefix}:*"):
            r.delete(key)


if __name__ == "__main__":
    main()
