"""Run an integ test app so that integ-runner 2.197 can read what it writes.

The newest @aws-cdk/integ-runner (2.197.10) bundles a toolkit that reads cloud-assembly schema 53
at most; aws-cdk-lib 2.275 writes 55, and integ-runner refuses it ("Cloud assembly schema version
mismatch"). The assembly and asset manifest JSON schemas of aws-cdk.cloud-assembly-schema 53.28
and 55.4 are identical; 54 and 55 only added integ-manifest fields (allowDeleteFailures, a
"destructive" enum value) and validation-report fields (suppressedViolations) that integ-runner
does not need here. So, after the app has written its assembly, this relabels manifests of
schema 54 or 55 as 53; any later schema is left alone, and integ-runner refuses it again until
someone compares that schema too. It also drops the creation stacks and annotation traces that
would put jsii's temporary paths into the committed snapshot.

Once integ-runner reads schema 55, delete relabel() and keep the rest.

Usage (integ-runner's --app): python3 tests/integ/schema_shim.py {filePath}
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

READER = 53  # the schema integ-runner 2.197.10's toolkit reads
SAME_AS_READER = {54, 55}  # majors whose assembly/asset manifests are schema 53's


def drop_traces(outdir: Path) -> None:
    """Creation stacks and annotation traces name jsii's temporary folders, new on every run:
    keep them out of the committed snapshot."""
    for metadata in outdir.rglob("*.metadata.json"):
        data = json.loads(metadata.read_text())
        for path, entries in data.items():
            data[path] = [
                {k: v for k, v in e.items() if k != "trace"}
                for e in entries
                if e.get("type") != "aws:cdk:creationStack"
            ]
        metadata.write_text(json.dumps(data, indent=2))


def relabel(outdir: Path) -> None:
    for manifest in [
        *outdir.rglob("manifest.json"),
        *outdir.rglob("*.assets.json"),
        *outdir.rglob("integ.json"),
    ]:
        data = json.loads(manifest.read_text())
        major = int(str(data.get("version", "0")).split(".")[0])
        if major in SAME_AS_READER:
            data["version"] = f"{READER}.0.0"
            manifest.write_text(json.dumps(data, indent=2))


def main(argv: list[str]) -> None:
    (app,) = argv
    runpy.run_path(app, run_name="__main__")
    outdir = Path(os.environ["CDK_OUTDIR"])
    relabel(outdir)
    drop_traces(outdir)


if __name__ == "__main__":
    main(sys.argv[1:])
