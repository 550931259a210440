"""The ``kybern`` command: ``kybern server``, ``kybern agent`` and ``kybern simulate``; kubectl
and image tools join later."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from kybern.cli import paths

DESCRIPTION = """kybern: a lightweight Kubernetes-compatible container platform.

Start a cluster with `kybern server`; point kubectl at <data-dir>/kubeconfig.yaml."""


def _server_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "server",
        help="run a cluster: API server, controllers, scheduler and a node agent",
        description="Run a kybern control plane: a Kubernetes v1.32 API server over an embedded "
        "SQLite store. Writes an admin kubeconfig to <data-dir>/kubeconfig.yaml.",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"state, PKI and kubeconfig directory (default: {paths.default_data_dir()})",
    )
    p.add_argument(
        "--bind-address", default="127.0.0.1", help="address to serve HTTPS on (default 127.0.0.1)"
    )
    p.add_argument(
        "--port", type=int, default=6443, help="HTTPS port (default 6443; 0 picks a free one)"
    )
    p.add_argument(
        "--datastore",
        default="",
        help="storage URL: sqlite:///path/state.db (default: sqlite in <data-dir>/db/state.db)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--disable-scheduler",
        action="store_true",
        help="do not run the scheduler in this process (pods stay unscheduled)",
    )
    p.add_argument(
        "--disable-controller-manager",
        action="store_true",
        help="do not run the controllers in this process (an API server and store only)",
    )
    p.add_argument(
        "--disable-agent",
        action="store_true",
        help="do not run a node agent (kubelet) in this process; the agent is also off when "
        "--simulated-nodes is given, so the cluster has exactly the simulated nodes",
    )
    _service_flags(p)
    _agent_flags(p)
    _tuning_flags(p)
    _simulation_flags(p, prefix="simulated-")
    p.set_defaults(func=_run_server)


def _agent_flags(p: argparse.ArgumentParser) -> None:
    """The node agent's flags, shared by `kybern server` and `kybern agent`."""
    from kybern.runtime import registry

    group = p.add_argument_group("node agent")
    group.add_argument(
        "--runtime",
        default="",
        choices=registry.names(),
        help="container runtime (default: oci as root when usable, else process)",
    )
    group.add_argument("--node-name", default="", help="node name (default: the host name)")
    group.add_argument(
        "--node-ip", default="", help="the node's InternalIP (default: the default route's address)"
    )
    group.add_argument(
        "--kubelet-port", type=int, default=10250, help="kubelet HTTPS port (default 10250)"
    )
    group.add_argument(
        "--pod-manifest-path", type=Path, default=None, help="directory of static pod manifests"
    )
    group.add_argument(
        "--cluster-dns",
        default="",
        help="cluster DNS server IPs for pods (comma-separated; default: the kube-dns "
        "ClusterIP, 10.43.0.10 with the default --service-cidr)",
    )
    group.add_argument(
        "--proxy-mode",
        default="",
        choices=["nftables", "iptables", "userspace", "none"],
        help="service proxy mode (default: userspace with the process runtime, else nftables "
        "or iptables where usable); none runs no proxy",
    )
    group.add_argument(
        "--cluster-domain", default="cluster.local", help="cluster domain (default cluster.local)"
    )
    group.add_argument(
        "--pod-cidr",
        default="",
        help="this node's pod CIDR (oci runtime; default: assigned by the node IPAM controller)",
    )


def _agent_options(args: argparse.Namespace, data_dir: Path, **extra: Any) -> Any:
    from kybern.kubelet import component

    return component.Options(
        data_dir=data_dir,
        runtime=args.runtime,
        node_name=args.node_name,
        node_ip=args.node_ip,
        port=args.kubelet_port,
        pod_manifest_path=args.pod_manifest_path,
        cluster_dns=[ip.strip() for ip in args.cluster_dns.split(",") if ip.strip()],
        cluster_domain=args.cluster_domain,
        pod_cidr=args.pod_cidr,
        **extra,
    )


def _agent_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "agent",
        help="run a node agent (kubelet) that joins a kybern server",
        description="Register this machine as a node of the cluster at --server and run the "
        "pods bound to it.",
    )
    p.add_argument("--server", default="", help="API server URL, e.g. https://10.0.0.1:6443")
    p.add_argument("--token", default="", help="bearer token to authenticate with")
    p.add_argument("--kubeconfig", default="", help="kubeconfig with the server's credentials")
    p.add_argument("--ca-file", default="", help="the cluster CA certificate (PEM)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"agent state directory (default: {paths.default_data_dir()}/agent)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _agent_flags(p)
    p.set_defaults(func=_run_agent)


def _run_agent(args: argparse.Namespace) -> int:
    from kybern.cli import services
    from kybern.client import errors as client_errors

    if not args.server and not args.kubeconfig:
        print("kybern agent: give --server and --token, or --kubeconfig", file=sys.stderr)
        return 2
    args.cluster_dns = args.cluster_dns or services.DEFAULT_CLUSTER_DNS
    # without --data-dir the agent shares the host's image store with `kybern image`
    images = None if args.data_dir else paths.default_data_dir() / "images"
    options = _agent_options(
        args, args.data_dir or paths.default_data_dir() / "agent", images_dir=images
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                services.run_agent(
                    options,
                    args.proxy_mode,
                    server=args.server,
                    token=args.token,
                    kubeconfig=args.kubeconfig,
                    ca_file=args.ca_file,
                )
            )
    except (client_errors.ClientError, OSError, ValueError) as exc:
        print(f"kybern agent: {exc}", file=sys.stderr)
        return 1
    return 0


def _simulation_flags(p: argparse.ArgumentParser, *, prefix: str) -> None:
    """Simulated nodes (kybern.kubelet.simulated): `--simulated-nodes N` on `kybern server`,
    `--nodes N` on `kybern simulate`."""
    group = p.add_argument_group("simulated nodes")
    node = prefix.replace("simulated-", "simulated-node-") if prefix else "node-"
    group.add_argument(
        f"--{prefix}nodes",
        dest="sim_nodes",
        type=int,
        default=0,
        metavar="N",
        help="run N simulated nodes that report pods Running without running anything",
    )
    group.add_argument(
        f"--{node}cpu", dest="sim_cpu", default="4", metavar="CPU", help="CPU capacity (default 4)"
    )
    group.add_argument(
        f"--{node}memory",
        dest="sim_memory",
        default="16Gi",
        metavar="BYTES",
        help="memory capacity (default 16Gi)",
    )
    group.add_argument(
        f"--{node}pods",
        dest="sim_pods",
        default="110",
        metavar="N",
        help="pod capacity (default 110)",
    )
    group.add_argument(
        f"--{node}labels", dest="sim_labels", default="", metavar="K=V,...", help="extra labels"
    )
    group.add_argument(
        f"--{node}taints", dest="sim_taints", default="", metavar="K=V:EFFECT,...", help="taints"
    )


def _simulation_options(args: argparse.Namespace) -> dict[str, object]:
    from kybern.kubelet import simulated

    return {
        "simulated_nodes": args.sim_nodes,
        "simulated_node_cpu": args.sim_cpu,
        "simulated_node_memory": args.sim_memory,
        "simulated_node_pods": args.sim_pods,
        "simulated_node_labels": simulated.parse_labels(args.sim_labels),
        "simulated_node_taints": simulated.parse_taints(args.sim_taints),
    }


def _simulate_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "simulate",
        help="run simulated nodes against a kybern (or Kubernetes) API server",
        description="Register N simulated nodes that keep Leases and move their pods through "
        "kubelet's status transitions without running anything.",
    )
    p.add_argument("--kubeconfig", required=True, help="kubeconfig with the server's credentials")
    p.add_argument("--server", default="", help="API server URL (default: the kubeconfig's)")
    p.add_argument("--prefix", default="sim-node-", help="node name prefix (default sim-node-)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _simulation_flags(p, prefix="")
    p.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    from kybern.kubelet import simulated

    try:
        config = simulated.Config.from_options(_simulation_options(args))
    except ValueError as exc:
        print(f"kybern simulate: {exc}", file=sys.stderr)
        return 2
    config.prefix = args.prefix
    if config.nodes <= 0:
        print("kybern simulate: --nodes must be at least 1", file=sys.stderr)
        return 2
    from kybern.client import errors as client_errors

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                simulated.run_standalone(config, kubeconfig=args.kubeconfig, server=args.server)
            )
    except (client_errors.ClientError, OSError) as exc:
        print(f"kybern simulate: {exc}", file=sys.stderr)
        return 1
    return 0


def _tuning_flags(p: argparse.ArgumentParser) -> None:
    """History and cache sizes; the defaults suit clusters, small values suit tests that need
    a short history (410 Gone paths)."""
    tuning = p.add_argument_group("history tuning")
    tuning.add_argument(
        "--storage-history-revisions",
        type=int,
        default=None,
        metavar="N",
        help="keep only the last N revisions of history, with no time window "
        "(default: 5 minutes and 10000 revisions)",
    )
    tuning.add_argument(
        "--storage-compact-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how often background compaction runs (default 30)",
    )
    tuning.add_argument(
        "--watch-cache-size",
        type=int,
        default=None,
        metavar="N",
        help="events kept per resource for resuming watches from memory (default 10000)",
    )


def _service_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("services and cluster DNS")
    group.add_argument(
        "--service-cidr",
        default="10.43.0.0/16",
        help="the range ClusterIPs are allocated from (default 10.43.0.0/16)",
    )
    group.add_argument(
        "--service-node-port-range",
        default="30000-32767",
        help="the range NodePorts are allocated from (default 30000-32767)",
    )
    group.add_argument(
        "--disable-dns",
        action="store_true",
        help="do not run the cluster DNS server (it runs only beside the server's own agent)",
    )
    group.add_argument(
        "--dns-port",
        type=int,
        default=0,
        help="port the cluster DNS server listens on at the node IP (default: 53 as root with "
        "the oci runtime, else 10053; kube-dns's ClusterIP forwards to it)",
    )


def _service_options(args: argparse.Namespace) -> dict[str, object]:
    """Validated --service-cidr/--service-node-port-range, the proxy mode, the DNS server."""
    import ipaddress

    from kybern.apiserver.services import ranges
    from kybern.cli import services

    try:
        cidr = ipaddress.ip_network(args.service_cidr, strict=False)
    except ValueError:
        raise ValueError(
            f"invalid --service-cidr {args.service_cidr!r}: want a CIDR such as 10.43.0.0/16"
        ) from None
    if cidr.num_addresses < 16:
        raise ValueError(f"--service-cidr {args.service_cidr} is too small (at least a /28)")
    try:
        ranges.parse_port_range(args.service_node_port_range)
    except ValueError:
        raise ValueError(
            f"invalid --service-node-port-range {args.service_node_port_range!r}: "
            "want e.g. 30000-32767"
        ) from None
    if not 0 <= args.dns_port <= 65535:
        raise ValueError(f"invalid --dns-port {args.dns_port}: want 0-65535")
    args.cluster_dns = args.cluster_dns or services.cluster_dns_ip(str(cidr))
    dns_ip = args.cluster_dns.split(",")[0].strip()
    if not args.disable_dns and not _in_network(dns_ip, cidr):
        raise ValueError(
            f"--cluster-dns {dns_ip} is not in --service-cidr {cidr}: the kube-dns Service "
            "takes that ClusterIP (or give --disable-dns)"
        )
    options: dict[str, object] = {"proxy_mode": args.proxy_mode}
    # DNS serves the pods of the server's own node: none without an agent (simulated nodes)
    if not args.disable_dns and not args.disable_agent and not args.sim_nodes:
        options["dns"] = services.DNSOptions(
            cluster_ip=dns_ip,
            address=args.node_ip,
            port=args.dns_port,
            zone=args.cluster_domain,
            runtime=args.runtime,
        )
    return options


def _in_network(ip: str, network: Any) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


def _run_server(args: argparse.Namespace) -> int:
    # imported here: `kybern agent` and `kybern image` never load the API server (memory)
    from kybern.apiserver import server
    from kybern.cli import cluster

    try:
        options = _simulation_options(args)
        options["disabled"] = {
            name
            for name, off in (
                ("scheduler", args.disable_scheduler),
                ("controller-manager", args.disable_controller_manager),
            )
            if off
        }
        options.update(_service_options(args))
    except ValueError as exc:
        print(f"kybern server: {exc}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or paths.default_data_dir()
    if not args.disable_agent and not args.sim_nodes:
        options["agent"] = _agent_options(
            args,
            data_dir / "agent",
            control_plane=True,
            client_ca=data_dir / "pki" / "ca.crt",
            images_dir=data_dir / "images",  # the store `kybern image --data-dir` works on
        )
    config = server.Config(
        tune_gc=True,
        data_dir=data_dir,
        bind_address=args.bind_address,
        port=args.port,
        datastore=args.datastore,
        service_cidr=args.service_cidr,
        node_port_range=args.service_node_port_range,
        **_tuning(args),
    )
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # uvloop is optional on platforms without it
        runner = asyncio.run
    try:
        with contextlib.suppress(KeyboardInterrupt):
            runner(
                cluster.run(
                    cluster.ClusterConfig(
                        api=config,
                        components=cluster.default_components(options),
                        options=options,
                    )
                )
            )
    except OSError as exc:
        print(
            f"kybern server: cannot serve on {args.bind_address}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        print("Pick another --port or stop the process that holds it.", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"kybern server: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the data directory's store is held by another server
        print(f"kybern server: {exc}", file=sys.stderr)
        print("Stop the other kybern server or pick another --data-dir.", file=sys.stderr)
        return 1
    return 0


def _tuning(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.storage_history_revisions is not None:
        options["history_window_revisions"] = args.storage_history_revisions
        options["history_window_seconds"] = 0.0
    if args.storage_compact_interval is not None:
        options["compact_interval_seconds"] = args.storage_compact_interval
    if args.watch_cache_size is not None:
        options["watch_cache_capacity"] = args.watch_cache_size
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kybern", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _server_parser(sub)
    _agent_parser(sub)
    _simulate_parser(sub)
    # `kybern image ...` is parsed by kybern.cli.image (see main): listed here for --help only,
    # so the other commands never import the image tools
    sub.add_parser("image", help="manage the host's OCI images (kybern image --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["image"]:
        from kybern.cli import image

        return image.main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(logging, getattr(args, "log_level", "info").upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
