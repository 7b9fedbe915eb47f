"""Print what a synthesized cloud assembly protects: ``python -m rds_force_ssl.report cdk.out``.

It reads only the assembly's files (manifest, metadata, templates), so it runs without AWS
credentials and without re-running the app.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rds_force_ssl.facts import engines
from rds_force_ssl.facts.contract import KIND_CLUSTER, PROP_REBOOT, RESOURCE_TYPE
from rds_force_ssl.facts.policy import Reboot

PROTECTED_BY = "rds-force-ssl:protected-by"
# On a database whose ForceSsl sits in another stack: the path of its reboot resource, which is
# in the database's stack (not under the ForceSsl).
REBOOT_RESOURCE = "rds-force-ssl:reboot-resource"
# On an SslGuard: what it watches after deploy ("every database and proxy of its account and
# region, ..."), so that the report can say it is there.
GUARD = "rds-force-ssl:guard"
# The manifest's artifact for a Stage's own assembly (cloud-assembly-schema ArtifactType).
NESTED_ASSEMBLY = "cdk:cloud-assembly"


@dataclass(frozen=True)
class _Stack:
    name: str
    metadata: dict[str, Any]
    resources: dict[str, Any]
    template: dict[str, Any]

    def logical_id(self, path: str) -> str:
        for entry in self.metadata.get(path, []):
            if entry.get("type") == "aws:cdk:logicalId":
                return str(entry["data"])
        return ""


def _stacks(assembly: Path) -> list[_Stack]:
    """Every stack of the assembly, a Stage's (in its own folder) included."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    found = []
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") == NESTED_ASSEMBLY:  # a Stage: its stacks are in a folder
            found += _stacks(assembly / artifact["properties"]["directoryName"])
            continue
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        metadata = dict(artifact.get("metadata") or {})
        extra = artifact.get("additionalMetadataFile")
        if extra:
            metadata.update(json.loads((assembly / extra).read_text()))
        template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        found.append(_Stack(name, metadata, template.get("Resources", {}), template))
    return found


def protected(assembly: Path) -> list[dict[str, Any]]:
    """One row per protected database or proxy: stack, path, kind, and what the template
    renders for it (the group's parameters, or the proxy's RequireTLS; overrides included,
    which synth-time checks cannot see). The engine table says which parameter counts. A
    ForceSsl may live in another stack than its database: its resources are looked for in
    every stack, and exports are followed."""
    stacks = _stacks(assembly)
    rows = []
    for stack in stacks:
        for path, entries in sorted(stack.metadata.items()):
            for entry in entries:
                if entry.get("type") != PROTECTED_BY:
                    continue
                guard = str(entry["data"])
                row: dict[str, Any] = {
                    "stack": stack.name,
                    "database": path.lstrip("/"),
                    "protected_by": guard,
                }
                target = stack.resources.get(
                    stack.logical_id(f"{path}/Resource") or stack.logical_id(path), {}
                )
                if target.get("Type") == "AWS::RDS::DBProxy":
                    require_tls = target.get("Properties", {}).get(engines.PROXY.property)
                    row |= {
                        "kind": "proxy",
                        "parameters": {engines.PROXY.property: require_tls},
                        "enforced": require_tls is True,
                    }
                else:
                    reboot = next(
                        (str(e["data"]) for e in entries if e.get("type") == REBOOT_RESOURCE),
                        f"{guard}/Reboot",
                    )
                    row |= _database_row(stacks, stack, reboot, target)
                rows.append(row)
    return rows


def guards(assembly: Path) -> list[dict[str, str]]:
    """One row per SslGuard in the assembly: its stack, its path and what it watches."""
    return [
        {"stack": stack.name, "guard": path.lstrip("/"), "watches": str(entry["data"])}
        for stack in _stacks(assembly)
        for path, entries in sorted(stack.metadata.items())
        for entry in entries
        if entry.get("type") == GUARD
    ]


def guard_lines(guarded: list[dict[str, str]]) -> list[str]:
    return [f"guarded: {g['watches']}, by {g['guard']}" for g in guarded]


def _database_row(
    stacks: list[_Stack], home: _Stack, reboot: str, database: dict[str, Any]
) -> dict[str, Any]:
    where, props = _reboot_resource(stacks, reboot)
    group_ref = props.get("ParameterGroupName")
    group_at = _resolve(stacks, where, group_ref) if where is not None else None
    group = _resource(stacks, group_at)
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
    if group_at is None or _resolve(stacks, home, uses) != group_at:
        row["enforced"] = False
        row["why"] = f"the database's {key} is {json.dumps(uses)}, not the group ForceSsl wrote"
    return row


def _reboot_resource(stacks: list[_Stack], path: str) -> tuple[_Stack | None, dict[str, Any]]:
    """The stack holding the reboot resource at construct ``path``, and its properties."""
    for stack in stacks:
        res = stack.resources.get(stack.logical_id(f"/{path}/Default"), {})
        if res.get("Type") == RESOURCE_TYPE:
            return stack, dict(res.get("Properties", {}))
    return None, {}


def _resolve(stacks: list[_Stack], stack: _Stack, value: Any) -> tuple[str, str] | None:
    """(stack, logical ID) of the resource a ``Ref``, or an ``Fn::ImportValue`` of another
    stack's export of a ``Ref``, names; None for anything else."""
    if not isinstance(value, dict):
        return None
    if "Ref" in value:
        return stack.name, str(value["Ref"])
    name = value.get("Fn::ImportValue")
    for other in stacks:
        for output in other.template.get("Outputs", {}).values():
            if output.get("Export", {}).get("Name") == name:
                return _resolve(stacks, other, output.get("Value"))
    return None


def _resource(stacks: list[_Stack], at: tuple[str, str] | None) -> dict[str, Any]:
    if at is None:
        return {}
    stack = next(s for s in stacks if s.name == at[0])
    return dict(stack.resources.get(at[1], {}))


def render(rows: list[dict[str, Any]]) -> tuple[list[str], int]:
    """One line per row, and the exit code: 0 every database enforced in the template, 1 not
    (or nothing protected)."""
    lines = []
    for row in rows:
        params = ", ".join(
            f"{k}={json.dumps(v) if isinstance(v, bool) else v}"
            for k, v in sorted(row["parameters"].items())
        )
        verdict = "protected" if row["enforced"] else "NOT ENFORCED in the template"
        why = f" ({row['why']})" if "why" in row else ""
        policy = row.get("reboot", Reboot.IMMEDIATE.value)
        when = "" if policy == Reboot.IMMEDIATE.value else f" (reboot: {policy})"
        lines.append(
            f"{verdict}: {row['database']} ({row['kind']}) by {row['protected_by']}: {params}{when}"
            f"{why}"
        )
    return lines, 0 if rows and all(row["enforced"] for row in rows) else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m rds_force_ssl.report [ASSEMBLY]``, the same as ``rds-force-ssl report``."""
    args = sys.argv[1:] if argv is None else argv
    assembly = Path(args[0] if args else "cdk.out")
    if not (assembly / "manifest.json").is_file():
        print(f"{assembly}: no manifest.json; run `npx cdk synth` first", file=sys.stderr)
        return 2
    rows = protected(assembly)
    if not rows:
        print(f"{assembly}: no database is protected by rds-force-ssl")
        return 1
    lines, code = render(rows)
    print("\n".join(lines + guard_lines(guards(assembly))))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
