"""The ``kybern`` command: ``kybern server`` today; agent, kubectl and image tools join later."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from kybern.apiserver import server
from kybern.cli import cluster

DESCRIPTION = """kybern: a lightweight Kubernetes-compatible container platform.

Start a cluster with `kybern server`; point kubectl at <data-dir>/kubeconfig.yaml."""


def _server_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "server",
        help="run the API server (and, in later releases, controllers, scheduler and a node agent)",
        description="Run a kybern control plane: a Kubernetes v1.32 API server over an embedded "
        "SQLite store. Writes an admin kubeconfig to <data-dir>/kubeconfig.yaml.",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"state, PKI and kubeconfig directory (default: {server.default_data_dir()})",
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
    _tuning_flags(p)
    p.set_defaults(func=_run_server)


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


def _run_server(args: argparse.Namespace) -> int:
    config = server.Config(
        tune_gc=True,
        data_dir=args.data_dir or server.default_data_dir(),
        bind_address=args.bind_address,
        port=args.port,
        datastore=args.datastore,
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
                    cluster.ClusterConfig(api=config, components=cluster.default_components({}))
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
    return parser


def main(argv: list[str] | None = None) -> int:
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
