"""Print what a synthesized cloud assembly protects: ``python -m rds_force_ssl.report cdk.out``.

It reads only the assembly's files (manifest, metadata, templates), so it runs without AWS
credentials and without re-running the app.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rds_force_ssl.handlers import engines
from rds_force_ssl.handlers.decide import Reboot
from rds_force_ssl.handlers.reboot import KIND_CLUSTER, PROP_REBOOT, RESOURCE_TYPE

PROTECTED_BY = "rds-force-ssl:protected-by"
# The manifest's artifact for a Stage's own assembly (cloud-assembly-schema ArtifactType).
NESTED_ASSEMBLY = "cdk:cloud-assembly"


def protected(assembly: Path) -> list[dict[str, Any]]:
    """One row per protected database or proxy: stack, path, kind, and what the template
    renders for it (the group's parameters, or the proxy's RequireTLS; overrides included,
    which synth-time checks cannot see). The engine table says which parameter counts."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    rows = []
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") == NESTED_ASSEMBLY:  # a Stage: its stacks are in a folder
            rows += protected(assembly / artifact["properties"]["directoryName"])
            continue
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
                row = {"stack": name, "database": path.lstrip("/"), "protected_by": guard}
                target = resources.get(
                    _logical_id(metadata, f"{path}/Resource") or _logical_id(metadata, path), {}
                )
                if target.get("Type") == "AWS::RDS::DBProxy":
                    require_tls = target.get("Properties", {}).get(engines.PROXY.property)
                    row |= {
                        "kind": "proxy",
                        "parameters": {engines.PROXY.property: require_tls},
                        "enforced": require_tls is True,
                    }
                else:
                    row |= _database_row(metadata, resources, guard, target)
                rows.append(row)
    return rows


def _database_row(
    metadata: dict[str, Any], resources: dict[str, Any], guard: str, database: dict[str, Any]
) -> dict[str, Any]:
    logical_id = _logical_id(metadata, f"/{guard}/Reboot/Default")
    res = resources.get(logical_id, {})
    props = res.get("Properties", {}) if res.get("Type") == RESOURCE_TYPE else {}
    group_ref = props.get("ParameterGroupName")
    group = resources.get(str(group_ref.get("Ref")), {}) if isinstance(group_ref, dict) else {}
    group_props = group.get("Properties", {})
    parameters = group_props.get("Parameters", {})
    facts = engines.for_family(str(group_props.get("Family", "")))
    parameter = facts.parameter if facts else None
    row = {
        "kind": props.get("Kind", "?"),
        "reboot": props.get(PROP_REBOOT, Reboot.IMMEDIATE.value),
        "parameters": parameters,
        "enforced": bool(facts and parameter and facts.enforces(parameters.get(parameter))),
    }
    # The group holds the parameter only for the databases that use it: a later change (or a raw
    # override) that gives the database another group leaves the group enforcing and the
    # database not.
    key = "DBClusterParameterGroupName" if row["kind"] == KIND_CLUSTER else "DBParameterGroupName"
    uses = database.get("Properties", {}).get(key)
    if group_ref is None or uses != group_ref:
        row["enforced"] = False
        row["why"] = f"the database's {key} is {json.dumps(uses)}, not the group ForceSsl wrote"
    return row


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
        params = ", ".join(
            f"{k}={json.dumps(v) if isinstance(v, bool) else v}"
            for k, v in sorted(row["parameters"].items())
        )
        verdict = "protected" if row["enforced"] else "NOT ENFORCED in the template"
        why = f" ({row['why']})" if "why" in row else ""
        policy = row.get("reboot", Reboot.IMMEDIATE.value)
        when = "" if policy == Reboot.IMMEDIATE.value else f" (reboot: {policy})"
        print(
            f"{verdict}: {row['database']} ({row['kind']}) by {row['protected_by']}: {params}{when}"
            f"{why}"
        )
    return 0 if all(row["enforced"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
