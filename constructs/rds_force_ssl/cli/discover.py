"""``probe --region``: every endpoint a client can connect to in a region.

- DB instances (Aurora members included: each has its own endpoint);
- DB clusters: the writer endpoint, the reader endpoint and every custom endpoint
  (``DBCluster.CustomEndpoints``), all on the cluster's port;
- RDS Proxy: each proxy's default endpoint and its extra proxy endpoints. Neither
  DescribeDBProxies nor DescribeDBProxyEndpoints reports a port. A proxy does not follow the
  database's port (aws/aws-cdk discussion 28321, pointing at the MySQL limitations in
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.html); the engine family's
  default port is used, and the row says it is assumed rather than read.

Each listing is read page by page. A listing the identity may not call, or one that fails for
another reason (a server error, an answer botocore cannot parse), costs only what it would have
found: the rest is still probed, a note says what is missing, and the run is incomplete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rds_force_ssl.cli import aws
from rds_force_ssl.cli.engines import Engine, for_proxy_family, for_rds_engine
from rds_force_ssl.cli.probe import Target
from rds_force_ssl.cli.wire import Endpoint

if TYPE_CHECKING:
    # Type stubs only (boto3-stubs[rds]), never imported at run time.
    from mypy_boto3_rds import RDSClient


@dataclass
class Discovery:
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    complete: bool = True
    _seen: set[tuple[str, int]] = field(default_factory=set, repr=False)  # Endpoint.key
    _unprobed: dict[str | None, Counter[str]] = field(default_factory=dict, repr=False)

    def add(self, engine: Engine, host: str | None, port: int | None, resource: str) -> None:
        if not host:
            self.notes.append(f"{resource} has no endpoint yet; not probed")
            return
        endpoint = Endpoint(host, port or engine.default_port)
        if endpoint.key not in self._seen:  # a proxy's default endpoint is listed twice
            self._seen.add(endpoint.key)
            self.targets.append(Target(endpoint, engine.name, resource))

    def unprobed(self, engine: str, why: str | None = None) -> None:
        """Count an endpoint that is not probed: no probe yet, or ``why`` none can exist."""
        self._unprobed.setdefault(why, Counter())[engine] += 1

    def unlisted(self, err: BaseException, *, action: str, what: str) -> None:
        """A listing that was denied or failed: what it would have found is not probed. A
        failure of the whole session (credentials, region, network) is raised instead."""
        if aws.is_fatal(err):
            raise err
        self.complete = False
        failure = aws.failed(err)
        remedy = "grant it" if aws.is_denied(err) else "run again"
        self.notes.append(
            f"{action} {failure}, so {what} were not probed; {remedy} to include them"
        )

    def finish(self) -> Discovery:
        for why, counter in self._unprobed.items():
            counts = ", ".join(f"{e}: {n}" for e, n in sorted(counter.items()))
            self.notes.append(
                f"not probed ({counts}): {why}"
                if why
                else f"no plaintext probe for these engines yet, not probed ({counts})"
            )
        return self


def labelled(resource: str, status: str | None) -> str:
    return resource if status in (None, "available") else f"{resource} ({status})"


def _instances(client: RDSClient, found: Discovery) -> None:
    for inst in aws.pages(client, "describe_db_instances", "DBInstances"):
        engine = for_rds_engine(inst.get("Engine", ""))
        if engine is None or engine.plaintext_probe is None:
            found.unprobed(inst.get("Engine", "?"), engine.no_probe if engine else None)
            continue
        address = inst.get("Endpoint") or {}
        found.add(
            engine,
            address.get("Address"),
            address.get("Port"),
            labelled(f"instance {inst['DBInstanceIdentifier']}", inst.get("DBInstanceStatus")),
        )


def _clusters(client: RDSClient, found: Discovery) -> None:
    for cluster in aws.pages(client, "describe_db_clusters", "DBClusters"):
        engine = for_rds_engine(cluster.get("Engine", ""))
        if engine is None or engine.plaintext_probe is None:
            found.unprobed(cluster.get("Engine", "?"), engine.no_probe if engine else None)
            continue
        name, port, status = (
            cluster["DBClusterIdentifier"],
            cluster.get("Port"),
            cluster.get("Status"),
        )
        found.add(engine, cluster.get("Endpoint"), port, labelled(f"cluster {name} writer", status))
        if cluster.get("ReaderEndpoint"):  # not every kind of cluster has one
            reader = labelled(f"cluster {name} reader", status)
            found.add(engine, cluster["ReaderEndpoint"], port, reader)
        for custom in cluster.get("CustomEndpoints", []):
            found.add(engine, custom, port, labelled(f"cluster {name} custom endpoint", status))


def _proxies(client: RDSClient, found: Discovery) -> dict[str, Engine]:
    families: dict[str, Engine] = {}
    for proxy in aws.pages(client, "describe_db_proxies", "DBProxies"):
        engine = for_proxy_family(proxy.get("EngineFamily", ""))
        if engine is None or engine.plaintext_probe is None:
            found.unprobed(
                f"proxy {proxy.get('EngineFamily', '?')}", engine.no_probe if engine else None
            )
            continue
        name = proxy["DBProxyName"]
        families[name] = engine
        tls = "RequireTLS on" if proxy.get("RequireTLS") else "RequireTLS off"
        found.add(
            engine,
            proxy.get("Endpoint"),
            None,
            labelled(
                f"proxy {name} ({tls}; port {engine.default_port} assumed)", proxy.get("Status")
            ),
        )
    return families


def _proxy_endpoints(client: RDSClient, found: Discovery, families: Mapping[str, Engine]) -> None:
    for ep in aws.pages(client, "describe_db_proxy_endpoints", "DBProxyEndpoints"):
        engine = families.get(ep.get("DBProxyName", ""))
        if engine is None:
            continue  # a proxy of another engine family (counted above), or one not listed
        found.add(
            engine,
            ep.get("Endpoint"),
            None,
            labelled(
                f"proxy {ep['DBProxyName']} endpoint {ep.get('DBProxyEndpointName', '?')} "
                f"({ep.get('TargetRole', '?')}; port {engine.default_port} assumed)",
                ep.get("Status"),
            ),
        )


def discover(client: RDSClient) -> Discovery:
    """Every endpoint of a probe-able engine in the client's region, and notes on the rest."""
    failures = aws.optional_failures()
    found = Discovery()
    families: dict[str, Engine] = {}
    for listing, action, what in (
        (_instances, "rds:DescribeDBInstances", "DB instances"),
        (_clusters, "rds:DescribeDBClusters", "DB cluster endpoints"),
    ):
        try:
            listing(client, found)
        except failures as err:
            found.unlisted(err, action=action, what=what)
    try:
        families = _proxies(client, found)
    except failures as err:
        found.unlisted(
            err, action="rds:DescribeDBProxies", what="RDS proxies (and their extra endpoints)"
        )
    else:
        try:
            _proxy_endpoints(client, found, families)
        except failures as err:
            found.unlisted(
                err, action="rds:DescribeDBProxyEndpoints", what="extra RDS Proxy endpoints"
            )
    return found.finish()
