"""``effectlake manifest``: the current routing manifest, as JSON or a table."""

import json

from resources.manifest_store import ManifestStore
from resources.settings import get_settings


def print_manifest(effect_type: str | None, as_json: bool) -> int:
    """Print the published manifest (optionally one effect type); 1 when none exists."""
    manifest = ManifestStore(uri=get_settings().manifest_uri).read()
    if manifest is None:
        print("no routing manifest published yet (run `effectlake economics`)")
        return 1
    if effect_type:
        if effect_type not in manifest["effects"]:
            print(f"effect type {effect_type!r} is not in manifest {manifest['version']}")
            return 1
        manifest = {**manifest, "effects": {effect_type: manifest["effects"][effect_type]}}
    if as_json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
        return 0
    print(f"manifest {manifest['version']} published {manifest['published_at']} (priority {manifest['priority']})")
    for effect, entries in manifest["effects"].items():
        print(f"  {effect}")
        for e in entries:
            cost = "—" if e["expected_cost_usd"] is None else f"${e['expected_cost_usd']:.7f}"
            print(
                f"    {e['rank']}. {e['provider_id']:<22} score {e['score']:.3f}  cost {cost}  "
                f"confidence {e['confidence']:.2f}  {e['reason']}"
            )
    return 0
