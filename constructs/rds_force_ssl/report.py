"""Print what a synthesized cloud assembly protects: ``python -m rds_force_ssl.report cdk.out``.

It reads only the assembly's files (manifest, metadata, templates), so it runs without AWS
credentials and without re-running the app.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rds_force_ssl.handlers.reboot import RESOURCE_TYPE

PROTECTED_BY = "rds-force-ssl:protected-by"


def protected(assembly: Path) -> list[dict[str, Any]]:
    """One row per protected database: stack, database path, kind, and its group's parameters
    as the template renders them (overrides included, which synth-time checks cannot see)."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    rows = []
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        metadata = dict(artifact.get("metadata") or {})
        extra = artifact.get("additionalMetadataFile")
        if extra:
            metadata.update(json.loads((assembly / extra).read_text()))
        template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        resources = template.get("Resources", {})
        for path, entries in sorted(metadata.items()):
            for entry in entries:
                if entry.get("type") != PROTECTED_BY:
                    continue
                guard = str(entry["data"])
                logical_id = _logical_id(metadata, f"/{guard}/Reboot/Default")
                res = resources.get(logical_id, {})
                props = res.get("Properties", {}) if res.get("Type") == RESOURCE_TYPE else {}
                group_ref = props.get("ParameterGroupName")
                group = (
                    resources.get(group_ref.get("Ref"), {}) if isinstance(group_ref, dict) else {}
                )
                parameters = group.get("Properties", {}).get("Parameters", {})
                rows.append(
                    {
                        "stack": name,
                        "database": path.lstrip("/"),
                        "protected_by": guard,
                        "kind": props.get("Kind", "?"),
                        "parameters": parameters,
                        "enforced": str(parameters.get("rds.force_ssl")) == "1",
                    }
                )
    return rows


def _logical_id(metadata: dict[str, Any], path: str) -> str:
    for entry in metadata.get(path, []):
        if entry.get("type") == "aws:cdk:logicalId":
            return str(entry["data"])
    return ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    assembly = Path(args[0] if args else "cdk.out")
    if not (assembly / "manifest.json").is_file():
        print(f"{assembly}: no manifest.json; run `npx cdk synth` first", file=sys.stderr)
        return 2
    rows = protected(assembly)
    if not rows:
        print(f"{assembly}: no database is protected by rds-force-ssl")
        return 1
    for row in rows:
        params = ", ".join(f"{k}={v}" for k, v in sorted(row["parameters"].items()))
        verdict = "protected" if row["enforced"] else "NOT ENFORCED in the template"
        print(f"{verdict}: {row['database']} ({row['kind']}) by {row['protected_by']}: {params}")
    return 0 if all(row["enforced"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
