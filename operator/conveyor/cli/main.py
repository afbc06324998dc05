"""`kubectl conveyor COMMAND`: the commands, with kubectl's flags and exit codes.

kubectl runs a plugin with the words after its name and does not read flags
placed before it, so every flag kubectl users type (`-n`, `-A`, `--context`,
`--kubeconfig`, `-o`) is read here, before or after the command. Exit codes
are kubectl's: 0 done, 1 anything went wrong (a usage error included), with
the reason on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import urllib3
import yaml

from conveyor.cli import format as fmt
from conveyor.client import connection, operations
from conveyor.core import actions, job_listing, naming, summary, summary_json
from conveyor.dashboard import server

KIND = "backgroundjob.conveyor.dev"
QUEUE_KIND = "jobqueue.conveyor.dev"


class UsageError(Exception):
    """The command line is wrong: exit 1, as kubectl does."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nSee '{self.prog} --help'.")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# ---------------------------------------------------------------- the command line


def _common(parser: argparse.ArgumentParser) -> None:
    """kubectl's own flags; SUPPRESS so that one given before the command is not reset after."""
    parser.add_argument(
        "-n", "--namespace", default=argparse.SUPPRESS, help="the namespace (kubectl's)"
    )
    parser.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=argparse.SUPPRESS,
        help="every namespace",
    )
    parser.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context")
    parser.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="the kubeconfig file")


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="kubectl conveyor",
        description="Look at Conveyor's queues and jobs, and act on them.",
    )
    _common(top)
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_: str, run: Callable[..., int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        _common(sub)
        sub.set_defaults(run=run)
        return sub

    def output(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "-o", "--output", choices=["wide", "json", "yaml"], help="wide, json or yaml"
        )

    output(
        command(
            "queues",
            "each queue: waiting, delayed, running, succeeded, failed, rate, oldest wait",
            run_queues,
        )
    )
    jobs = command("jobs", "the jobs, newest first", run_jobs)
    jobs.add_argument("-q", "--queue", help="only this queue's jobs")
    jobs.add_argument("--failed", action="store_true", help="only Failed jobs")
    jobs.add_argument("--phase", choices=summary.PHASES, help="only jobs in this phase")
    output(jobs)
    describe = command(
        "describe", "a job: its attempts as a timeline, conditions, events", run_describe
    )
    describe.add_argument("job")
    retry = command(
        "retry", "send a Failed job (or every Failed job of a queue) through again", run_retry
    )
    retry.add_argument("job", nargs="?")
    retry.add_argument("--failed", action="store_true", help="every Failed job of --queue")
    retry.add_argument("-q", "--queue", help='the queue ("" for the jobs that name none)')
    for name, action, help_ in (
        ("promote", actions.PROMOTE, "a Delayed or BackingOff job: ready to start now"),
        ("run-now", actions.RUN_NOW, "a recurring job: create a run now"),
        ("cancel", actions.CANCEL, "a waiting or running job: fail it, Cancelled"),
    ):
        sub = command(name, help_, run_action)
        sub.add_argument("job")
        sub.set_defaults(action=action)
    for name, paused in (("pause", True), ("resume", False)):
        sub = command(
            name, f"{name} a queue ({'admit nothing new' if paused else 'admit again'})", run_pause
        )
        sub.add_argument("queue")
        sub.set_defaults(paused=paused)
    logs = command("logs", "an attempt's log (the latest attempt's by default)", run_logs)
    logs.add_argument("job")
    logs.add_argument("--attempt", type=int, help="the attempt (1, 2, ...)")
    logs.add_argument("-f", "--follow", action="store_true", help="follow while it runs")
    logs.add_argument("--tail", type=int, help="only the last lines")
    dashboard = command(
        "dashboard",
        "the web dashboard, on this machine, as you (your kubeconfig's identity)",
        run_dashboard,
    )
    dashboard.add_argument("--address", default="127.0.0.1", help="listen address")
    dashboard.add_argument("--port", type=int, default=8099, help="listen port")
    dashboard.add_argument(
        "--allow-actions",
        action="store_true",
        help="show and allow retry, promote, run now, cancel, pause (off: read-only)",
    )
    dashboard.add_argument(
        "--namespaces",
        help="watch these namespaces (comma-separated) instead of -n's one or -A's all",
    )
    dashboard.add_argument(
        "--health-port",
        type=int,
        help="also serve /healthz alone on this port of every address (for probes)",
    )
    return top


# ---------------------------------------------------------------- commands


class Context:
    """What every command works with: the API calls, the namespace, where to print."""

    def __init__(self, args: argparse.Namespace, out: Any, err: Any) -> None:
        target = connection.Target(
            kubeconfig=getattr(args, "kubeconfig", None),
            context=getattr(args, "context", None),
            namespace=getattr(args, "namespace", None),
            all_namespaces=bool(getattr(args, "all_namespaces", False)),
        )
        self.target = target
        self.connection = connection.connect(target)
        self.api = operations.Conveyor(self.connection.client)
        self.namespace = self.connection.namespace
        self.out = out
        self.err = err
        self.now = utcnow()

    @property
    def one_namespace(self) -> str:
        """The namespace a command about one object works in (-A does not apply)."""
        if self.namespace is None:
            raise UsageError("a single object is named: give -n NAMESPACE, not -A")
        return self.namespace

    def print(self, text: str) -> None:
        print(text, file=self.out)


def _dump(data: Any, output: str | None) -> str:
    if output == "json":
        return json.dumps(data, indent=4, sort_keys=False)
    return yaml.safe_dump(data, sort_keys=False).rstrip()


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}


def run_queues(ctx: Context, args: argparse.Namespace) -> int:
    rows = summary.queue_rows(
        ctx.api.queues(ctx.namespace),
        [summary.job_row(body) for body in ctx.api.jobs(ctx.namespace)],
        ctx.now,
    )
    if args.output in ("json", "yaml"):
        ctx.print(_dump(_listing([summary_json.queue_json(row) for row in rows]), args.output))
        return 0
    if not rows:
        print(_nothing("queues", ctx.namespace), file=ctx.err)
        return 0
    ctx.print(
        fmt.queues_table(rows, wide=args.output == "wide", all_namespaces=ctx.namespace is None)
    )
    return 0


def _nothing(what: str, namespace: str | None) -> str:
    return f"No {what} found" + (f" in {namespace} namespace." if namespace else ".")


def run_jobs(ctx: Context, args: argparse.Namespace) -> int:
    if args.failed and args.phase and args.phase != "Failed":
        raise UsageError("--failed and --phase name different phases")
    phase = "Failed" if args.failed else args.phase
    bodies = ctx.api.jobs(ctx.namespace, queue=args.queue, phase=phase)
    if args.output in ("json", "yaml"):
        ctx.print(_dump(_listing(bodies), args.output))
        return 0
    page = job_listing.select([summary.job_row(body) for body in bodies], limit=len(bodies))
    if not page.rows:
        print(_nothing("jobs", ctx.namespace), file=ctx.err)
        return 0
    ctx.print(
        fmt.jobs_table(
            page.rows, ctx.now, wide=args.output == "wide", all_namespaces=ctx.namespace is None
        )
    )
    return 0


def run_describe(ctx: Context, args: argparse.Namespace) -> int:
    namespace = ctx.one_namespace
    body = ctx.api.job(namespace, args.job)
    row = summary.job_row(body)
    runs: list[summary.JobRow] = []
    if row.recurring:
        runs = job_listing.select(
            [
                summary.job_row(b)
                for b in ctx.api.jobs(namespace, label_selector=f"{naming.LABEL_PARENT}={row.name}")
            ],
            limit=1000,
        ).rows
    dependencies: dict[str, str | None] = {}
    for name in row.depends_on:
        try:
            dependencies[name] = summary.job_row(ctx.api.job(namespace, name)).phase
        except operations.ApiError as error:
            if error.status != 404:
                raise
            dependencies[name] = None
    tails = {} if row.recurring else ctx.api.log_tails(namespace, row.name)
    ctx.print(
        fmt.describe(
            body,
            attempts=summary.timeline(body, tails),
            events=ctx.api.events(namespace, row.name),
            dependencies=dependencies,
            runs=runs,
            now=ctx.now,
        )
    )
    return 0


def _asked(ctx: Context, asked: operations.Asked) -> None:
    ctx.print(f"{KIND}/{asked.name} {asked.action.name} asked ({asked.action.how(asked.value)})")


def run_retry(ctx: Context, args: argparse.Namespace) -> int:
    namespace = ctx.one_namespace
    if args.failed:
        if args.job or args.queue is None:
            raise UsageError('retry --failed takes -q QUEUE (-q "" for jobs of no queue), no job')
        failed = ctx.api.jobs(namespace, queue=args.queue, phase="Failed")
        if not failed:
            print(f"No Failed jobs in queue {args.queue} of {namespace} namespace.", file=ctx.err)
            return 0
        for body in failed:
            name = body["metadata"]["name"]
            _asked(ctx, ctx.api.ask(actions.REPLAY, namespace, name, now=utcnow(), job=body))
        return 0
    if not args.job:
        raise UsageError("retry takes a job name, or --failed -q QUEUE")
    _asked(ctx, ctx.api.ask(actions.REPLAY, namespace, args.job, now=ctx.now))
    return 0


def run_action(ctx: Context, args: argparse.Namespace) -> int:
    _asked(ctx, ctx.api.ask(args.action, ctx.one_namespace, args.job, now=ctx.now))
    return 0


def run_pause(ctx: Context, args: argparse.Namespace) -> int:
    ctx.api.set_paused(ctx.one_namespace, args.queue, args.paused)
    ctx.print(f"{QUEUE_KIND}/{args.queue} {'paused' if args.paused else 'resumed'}")
    return 0


def run_logs(ctx: Context, args: argparse.Namespace) -> int:
    namespace = ctx.one_namespace
    status = ctx.api.job(namespace, args.job).get("status") or {}
    attempt = args.attempt or status.get("attempts") or 0
    if attempt < 1:
        raise operations.ApiError(f"backgroundjob {namespace}/{args.job} has no attempt yet")
    pod = naming.pod_name(args.job, attempt)
    stream = ctx.out.buffer if hasattr(ctx.out, "buffer") else None
    for chunk in ctx.api.follow_log(namespace, pod, follow=args.follow, tail=args.tail):
        if stream is not None:
            stream.write(chunk)
            stream.flush()
        else:
            ctx.out.write(chunk.decode(errors="replace"))
    return 0


def run_dashboard(ctx: Context, args: argparse.Namespace) -> int:
    server.run(
        ctx.connection,
        address=args.address,
        port=args.port,
        allow_actions=args.allow_actions,
        announce=lambda line: print(line, file=ctx.err, flush=True),
        health_port=args.health_port,
        namespaces=[n for n in args.namespaces.split(",") if n] if args.namespaces else None,
    )
    return 0


# ---------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None, *, out: Any = None, err: Any = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser().parse_args(argv)
        if getattr(args, "run", None) is None:
            parser().print_help(err)
            return 1
        return int(args.run(Context(args, out, err), args))
    except UsageError as error:
        print(f"error: {error}", file=err)
    except (operations.ApiError, operations.NotApplicableError) as error:
        print(f"{'' if str(error).startswith('Error from server') else 'error: '}{error}", file=err)
    except connection.NoClusterError as error:
        print(f"error: {error}", file=err)
    except urllib3.exceptions.HTTPError as error:
        print(f"error: cannot reach the API server: {error}", file=err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
