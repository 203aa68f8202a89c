"""``dispatcher`` command line: serve, check, pool create, pool from-terraform, usage, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dispatcher.config import ConfigError, DispatcherConfig, default_ledger_dsn, load_config
from dispatcher.ledger.usage import GroupBy
from dispatcher.logs import configure_logging
from providers import registry

if TYPE_CHECKING:
    from dispatcher.service import Dispatcher
from dispatcher.startup.errors import EXIT_CONFIG, EXIT_DEPENDENCY, EXIT_PORT, EXIT_USAGE, StartupError


def _serve(args: argparse.Namespace) -> int:
    from dispatcher.startup.preflight import bind_service_socket

    config = load_config(Path(args.config))
    configure_logging(config.service.log_level, args.log_json or config.service.log_json)
    http_socket = bind_service_socket(config.service.host, config.service.port)
    try:
        asyncio.run(_serve_until_signalled(config, http_socket))
    finally:
        if http_socket is not None:
            http_socket.close()
    return 0


async def _serve_until_signalled(config: DispatcherConfig, http_socket: socket.socket | None) -> None:
    """SIGTERM (docker stop, Kubernetes) and SIGINT stop the service gracefully: no new claims,
    claimed submissions finish (or are left to recovery after ``loop.shutdown_grace_s``), exit.
    A second signal, a signal during start-up, or the grace plus 10 s passing, stops at once."""
    from dispatcher.service import Dispatcher

    dispatcher = Dispatcher(config, http_socket)
    serving = asyncio.Event()
    task = asyncio.create_task(_start_and_serve(dispatcher, config, serving))
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if dispatcher.stopping or not serving.is_set():
            task.cancel()
            return
        dispatcher.request_stop()
        loop.call_later(config.loop.shutdown_grace_s + 10, task.cancel)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await task
    except asyncio.CancelledError:
        pass


async def _start_and_serve(dispatcher: Dispatcher, config: DispatcherConfig, serving: asyncio.Event) -> None:
    from dispatcher.startup.preflight import ensure_dependencies

    await ensure_dependencies(config)  # ledger, then each Prefect (waited for up to startup_timeout_s)
    serving.set()
    await dispatcher.run()


def _check(args: argparse.Namespace) -> int:
    from dispatcher.startup.checks import failed, run_checks

    config = load_config(Path(args.config))
    pools = sum(len(ws.pools) for ws in config.workspaces)
    print(f"ok    config {args.config}: {len(config.workspaces)} workspace(s), {pools} pool(s)", flush=True)
    findings = asyncio.run(run_checks(config, args.timeout))
    for finding in findings:
        print(finding.render())
    return EXIT_DEPENDENCY if failed(findings) else 0


def _pool_create(args: argparse.Namespace) -> int:
    from dispatcher.prefect.pools import create_pool

    api_url = args.api_url or os.environ.get("PREFECT_API_URL")
    if not api_url:
        print("set --api-url or PREFECT_API_URL", file=sys.stderr)
        return 2
    try:
        message = asyncio.run(
            create_pool(
                api_url, args.name, args.type,
                api_key=os.environ.get("PREFECT_API_KEY"), auth_string=os.environ.get("PREFECT_API_AUTH_STRING"),
                managed_provider=args.managed_provider, overwrite=args.overwrite,
                concurrency_limit=args.concurrency_limit,
            )
        )
    except registry.ProviderNotInstalled as exc:
        return _fail([str(exc)], EXIT_DEPENDENCY)
    except registry.RegistryError as exc:  # an unknown pool type or provider kind
        return _fail([str(exc)], EXIT_USAGE)
    print(message)
    return 0


def _pool_from_terraform(args: argparse.Namespace) -> int:
    from dispatcher.terraform.command import CommandFailed, FromTerraform, PrefectConnection, from_terraform

    if args.config:  # a workspace's connection from dispatcher.yaml, as `serve` uses it
        workspaces = load_config(Path(args.config)).workspaces
        chosen = [ws for ws in workspaces if args.workspace in (None, ws.name)]
        if len(chosen) != 1:
            names = ", ".join(ws.name for ws in workspaces)
            return _fail([f"name one workspace of {args.config} with --workspace ({names})"], EXIT_USAGE)
        ws = chosen[0]
        connection = PrefectConnection(api_url=ws.api_url, api_key=ws.api_key, auth_string=ws.auth_string)
    elif args.api_url or os.environ.get("PREFECT_API_URL"):
        connection = PrefectConnection(api_url=args.api_url or os.environ["PREFECT_API_URL"],
                                       api_key=os.environ.get("PREFECT_API_KEY") or None,
                                       auth_string=os.environ.get("PREFECT_API_AUTH_STRING") or None)
    else:
        return _fail(["set --api-url, PREFECT_API_URL or --config"], EXIT_USAGE)
    request = FromTerraform(source=args.outputs, pool=args.name, module=args.module, block_name=args.block_name,
                            ambient_identity=args.ambient_identity)
    try:
        lines = asyncio.run(from_terraform(request, connection))
    except CommandFailed as exc:
        return _fail([str(exc)], exc.exit_code)
    print("\n".join(lines))
    return 0


def _usage(args: argparse.Namespace) -> int:
    from dispatcher.ledger.report import UsageQuery, print_usage

    config = load_config(Path(args.config)) if args.config else None
    dsn = args.ledger or (config.ledger_dsn if config else default_ledger_dsn())
    if args.month is not None and not re.match(r"^\d{4}-(0[1-9]|1[0-2])$", args.month):
        return _fail([f"--month must look like YYYY-MM, got {args.month!r}"], EXIT_USAGE)
    query = UsageQuery(dsn=dsn, workspaces=[args.workspace] if args.workspace else None, month=args.month,
                       group_by=args.by, output="json" if args.json else "csv" if args.csv else "table")
    if config is not None:
        query.prices = config.prices
    asyncio.run(print_usage(query))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dispatcher.demo.run import run_demo

    return asyncio.run(run_demo(runs=args.runs))


EXIT_CODES = f"""exit codes:
  0  success (serve: stopped by SIGTERM/SIGINT; check: every check passed)
  {EXIT_USAGE}  command-line usage error
  {EXIT_CONFIG}  configuration file missing, unreadable or invalid (one line per problem)
  {EXIT_DEPENDENCY}  a dependency is unreachable or refuses us at start (Prefect, its auth, the ledger,
     a provider's SDK or settings), or a configured pool is unknown, not a push type, or of a
     provider that is not yet available
  {EXIT_PORT}  the service port cannot be bound
"""


class _HelpReadAtFormatTime(argparse.ArgumentParser):
    """A parser whose epilog is computed when its help is shown.

    Listing pool types imports every cloud's provider class (its SDK included);
    building the parser happens for every command, showing ``pool create --help``
    only when asked for.
    """

    def __init__(self, *args: object, epilog_from: Callable[[], str] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._epilog_from = epilog_from

    def format_help(self) -> str:
        if self._epilog_from is not None:
            self.epilog = self._epilog_from()
        return super().format_help()


def _pool_types_help() -> str:
    """Each push pool type with the provider that runs it, from the registry."""
    lines = ["pool types (provider that runs them):"]
    servable = set(registry.servable_kinds())
    for pool_type in registry.push_pool_types():
        if pool_type == registry.MANAGED_POOL_TYPE:
            lines.append(f"  {pool_type:<32}Prefect Managed's variables (image, pip_packages, env...) on "
                         "--managed-provider; 4 vCPU / 16 GiB / 128 GiB, 24 h")
            continue
        kind = registry.kind_for_pool_type(pool_type, managed_provider="")  # not prefect:managed: unused
        note = "" if kind in servable else ": template only, not served until its provider lands"
        lines.append(f"  {pool_type:<32}{kind}{note}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatcher", description="Push execution for Prefect work pools.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Run the dispatcher service.", epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--config", required=True, help="Path to dispatcher.yaml.")
    serve.add_argument("--log-json", action="store_true", help="One JSON object per log line.")
    serve.set_defaults(func=_serve)

    check = sub.add_parser(
        "check", help="Validate the configuration and reach every dependency, without serving.",
        description="Validate the file (exit 3), then check each workspace's Prefect API, each pool,\n"
                    "the ledger and each provider's settings: one line per check, exit 0 when all\n"
                    f"pass, {EXIT_DEPENDENCY} otherwise. Writes nothing (no migration, no heartbeat, no directory).",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--config", required=True, help="Path to dispatcher.yaml.")
    check.add_argument("--timeout", type=float, default=10.0, help="Seconds each network check may take (default 10).")
    check.set_defaults(func=_check)

    pool = sub.add_parser("pool", help="Work pools.").add_subparsers(
        dest="pool_command", required=True, parser_class=_HelpReadAtFormatTime
    )
    _add_pool_create(pool)
    _add_pool_from_terraform(pool)

    usage = sub.add_parser(
        "usage", help="Compute usage per workspace and month, or one month grouped.",
        description="Without --by: billed compute per workspace and month. With --by: one month (default this\n"
                    "month) per pool, deployment, flow, provider or day, runs in flight included, with estimated\n"
                    "costs at the configuration's prices (the usage API's figures).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    usage.add_argument("--config", help="dispatcher.yaml (for its ledger_dsn and prices).")
    usage.add_argument("--ledger", help="Ledger DSN (overrides --config).")
    usage.add_argument("--workspace")
    usage.add_argument("--month", help="YYYY-MM")
    usage.add_argument("--by", choices=[g.value for g in GroupBy], type=GroupBy, help="Group one month this way.")
    output = usage.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="JSON instead of a table.")
    output.add_argument("--csv", action="store_true", help="CSV instead of a table.")
    usage.set_defaults(func=_usage)

    demo = sub.add_parser("demo", help="Run the end-to-end demo on the local provider (no cloud account).")
    demo.add_argument("--runs", type=int, default=6)
    demo.set_defaults(func=_demo)
    return parser


def _add_pool_create(pool: argparse._SubParsersAction) -> None:  # noqa: SLF001 - argparse names no public type
    create = pool.add_parser(
        "create", help="Create a push pool with its base job template.", epilog_from=_pool_types_help,
        description="Create a push pool through Prefect's REST API, with a base job template whose\n"
                    "variables keep the names of Prefect's own worker for that infrastructure.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("name")
    create.add_argument("--type", required=True, help="Push pool type (listed below).")
    create.add_argument("--api-url", help="Prefect API URL (default: $PREFECT_API_URL).")
    create.add_argument(
        "--managed-provider", default="local",
        help=f"Provider whose template prefect:managed pools get: {', '.join(registry.kinds())} (default: local).",
    )
    create.add_argument("--concurrency-limit", type=int, default=None)
    create.add_argument("--overwrite", action="store_true", help="Replace the template of an existing pool.")
    create.set_defaults(func=_pool_create)


def _add_pool_from_terraform(pool: argparse._SubParsersAction) -> None:  # noqa: SLF001 - argparse names no public type
    from_tf = pool.add_parser(
        "from-terraform", help="Create or update a pool's credentials block and defaults from Terraform outputs.",
        description="Read `terraform output -json` of one of our modules (terraform/aws-ecs, gcp-cloud-run,\n"
                    "azure-aci), then create or update the Prefect credentials block of that cloud and the\n"
                    "pool's job variable defaults (the pool is created with our template when missing).\n"
                    "Running it again changes nothing. Secret values are never printed.",
        epilog=f"exit codes: 0 done, {EXIT_USAGE} usage or a pool of another type, {EXIT_CONFIG} outputs unreadable, "
               f"of an unknown module or incomplete, {EXIT_DEPENDENCY} Prefect unreachable or refusing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from_tf.add_argument("name", help="Work pool name.")
    from_tf.add_argument("outputs", nargs="?", default="-",
                         help="File with `terraform output -json` (default: stdin).")
    from_tf.add_argument("--module", choices=["aws-ecs", "gcp-cloud-run", "azure-aci"],
                         help="The module that produced the outputs (default: recognised from their names).")
    from_tf.add_argument("--block-name", help="Name of the credentials block (default: the pool's name).")
    from_tf.add_argument(
        "--ambient-identity", action="store_true",
        help="The dispatcher runs as the module's identity (ECS task role or IRSA with trusted_services/oidc_*, "
             "GKE workload identity, Azure managed identity): the block gets no key, role to assume or "
             "principal, only region/project; the SDK's default credential chain is used.",
    )
    where = from_tf.add_mutually_exclusive_group()
    where.add_argument("--api-url", help="Prefect API URL (default: $PREFECT_API_URL, with $PREFECT_API_KEY or "
                                         "$PREFECT_API_AUTH_STRING).")
    where.add_argument("--config", help="Use a workspace's connection from this dispatcher.yaml instead.")
    from_tf.add_argument("--workspace", help="With --config: the workspace (needed when it has several).")
    from_tf.set_defaults(func=_pool_from_terraform)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        return _fail(exc.problems, EXIT_CONFIG)
    except StartupError as exc:
        return _fail(exc.lines, exc.exit_code)


def _fail(lines: list[str], exit_code: int) -> int:
    """An operator's problem: its lines, no traceback (they say everything a traceback would)."""
    for line in lines:
        print(line, file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
