"""`python -m localrun demo --assembly cdk.out.local --scenario happy_path` (what `make demo` runs)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Nothing here imports moto, the runner or Spark at the top: `list`, a misspelt scenario and a stale
# assembly are answered in a fraction of a second; run_demo and run_all import what a run needs.
from localrun.emulator.assembly import RESYNTHESIZE, ROOT, AssemblyError, CloudAssembly, newer_sources
from localrun.scenarios.catalogue import SCENARIOS
from stacks import pipeline_contract as contract


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.command)
    if args.command == "list":
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<26} {scenario.description}")
        return 0
    if args.command == "demo" and args.scenario not in SCENARIOS:
        print(f"error: SCENARIO={args.scenario!r} is not a scenario; one of: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    if problem := preflight(args.assembly, args.reports):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.command == "all":
        return run_all(args.assembly, args.reports)
    return run_demo(args.assembly, args.scenario, args.reports)


def _parser() -> argparse.ArgumentParser:
    """The `demo`, `all` and `list` subcommands and their options."""
    parser = argparse.ArgumentParser(prog="python -m localrun", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run one scenario on the synthesized assembly")
    demo.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.local")
    demo.add_argument("--scenario", default="happy_path")
    demo.add_argument("--reports", type=Path, default=ROOT / "reports")
    every = commands.add_parser("all", help="run every scenario, one fresh deployment each")
    every.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.local")
    every.add_argument("--reports", type=Path, default=ROOT / "reports")
    commands.add_parser("list", help="list the scenarios")
    return parser


def _configure_logging(command: str) -> None:
    # moto's interpreter logs every failed state at ERROR with its whole parse tree; a failing
    # state is what the fault scenarios are about, and the run report shows it readably.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    if command == "demo":  # the Lambda's own log lines, as CloudWatch Logs would hold them
        lambda_log = logging.StreamHandler(sys.stdout)
        lambda_log.setFormatter(logging.Formatter("             λ %(message)s"))
        logging.getLogger("localrun.lambda").addHandler(lambda_log)
        logging.getLogger("localrun.lambda").setLevel(logging.INFO)


def run_demo(assembly: Path, scenario_name: str, reports: Path) -> int:
    """One scenario on a fresh deployment, narrated as it runs, then its outcome and cost."""
    from localrun.emulator import published
    from localrun.emulator.deployment import LocalDeployment, local_aws
    from localrun.emulator.glue_standin import spark_session, start_spark_in_background
    from localrun.runner import run_scenario, write_report
    from ops import why

    scenario = SCENARIOS[scenario_name]
    started = time.monotonic()
    print(f"▶ scenario {scenario.name}: {scenario.description}")
    log_file = _log_to_file(reports / f"{scenario.name}.log")
    if scenario.faults.get("job_outcome", "SUCCEEDED") in ("SUCCEEDED", "FAILED_AFTER_WRITING"):
        start_spark_in_background(log_file=log_file)  # up while the stacks come up; the job needs it
    with local_aws():
        try:
            deployment = LocalDeployment.bring_up(assembly)
        except (AssemblyError, OSError) as error:
            return assembly_error(assembly, error)
        print(
            f"  stacks up on moto in {time.monotonic() - started:.1f} s "
            f"(landing s3://{deployment.landing_bucket}/{deployment.landing_prefix})"
        )
        try:
            report = run_scenario(deployment, scenario, on_event=lambda line: print(f"  {line}", flush=True))
        finally:
            deployment.stop_running()
        # what `make why` prints on AWS for this failure, from the same history and log groups
        diagnosis = why.for_deployment(deployment) if "FAILED" in report["statuses"] else ""
        data = published.run_data(deployment, report, lambda: spark_session(log_file=log_file))
    _print_outcome(report)
    print("\n".join(published.render(data)))
    path = write_report(report, reports)
    print(
        f"  {report['transitions']} state transitions = ${report['cost_usd']:.6f} at Standard prices "
        f"(${report['price']['usd_per_1000_standard_transitions']}/1,000, {report['price']['as_of']})"
    )
    print(
        f"  report: {_shown(path)}, Spark and moto logs: {_shown(log_file)}; "
        f"wall time {time.monotonic() - started:.1f} s"
    )
    if diagnosis:
        print(f"\n{diagnosis}")
    for denied in report.get("access_denied", []):  # a missing grant: what AWS would refuse
        print(f"  ✗ AccessDenied: {denied}")
    verdict = "as expected" if report["as_expected"] else "NOT as expected"
    print(f"{'✓' if report['as_expected'] else '✗'} {scenario.name}: {verdict}")
    return 0 if report["as_expected"] else 1


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _log_to_file(path: Path) -> Path:
    """Spark's and moto's log lines (and py4j's, and Python warnings) into `path`, not the demo's output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    for name, level in (
        ("moto", logging.WARNING),
        ("moto.stepfunctions.parser", logging.ERROR),
        ("py4j", logging.INFO),
        ("py.warnings", logging.WARNING),
    ):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False
    return path


def _print_outcome(report: dict[str, Any]) -> None:
    """The run's notifications, dead letters, and pipeline and stage executions."""
    for note in report["notifications"]:
        message = note["message"]
        if message.get("status") == "FAILED":
            cause = " ".join(str(message.get("cause", "")).split())
            detail = f"\n           {message.get('error')}: {cause[:110]}{'…' if len(cause) > 110 else ''}"
        else:
            rows = message.get("stages", {}).get(contract.TRANSFORM, {}).get("Output", {})
            detail = f" ({rows.get('reason')})" if rows.get("reason") else ""
        print(f"  ✉ SNS: {note['subject']}{detail}")
    if not report["notifications"]:
        print("  ✉ SNS: no notification")
    for letter in report["dead_letters"]:
        print(
            f"  ⚑ dead-letter queue: event {letter['event']['id']} ({letter.get('ERROR_CODE')}: "
            f"{letter.get('ERROR_MESSAGE')})"
        )
    for run in report["pipeline_runs"]:
        print(f"  pipeline {run['name']}: {run['status']} ({run['transitions']} transitions)")
    for stage in report["stage_runs"]:
        print(
            f"    {stage['stage']:<9} {stage['status']:<9} {stage['transitions']:>3} transitions  "
            f"{' → '.join(stage['path'])}"
        )


def preflight(assembly: Path, reports: Path) -> str | None:
    """What would spoil a run, found before it starts: an assembly older than the sources (it would
    run the old code), or a reports folder the report could not be written to after the run."""
    try:
        CloudAssembly.load(assembly)  # missing or unreadable: said before Spark and moto start
    except AssemblyError as error:
        return str(error)
    if newer := newer_sources(assembly):
        more = f" and {len(newer) - 1} more source file(s)" if len(newer) > 1 else ""
        first = newer[0].relative_to(ROOT) if newer[0].is_relative_to(ROOT) else newer[0]
        return f"cloud assembly {assembly} is older than {first}{more}: {RESYNTHESIZE}"
    try:
        reports.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=reports):
            pass
    except OSError as error:
        return f"cannot write reports to {reports} ({error.strerror or error}): pass --reports <a writable folder>"
    return None


def assembly_error(assembly: Path, error: Exception) -> int:
    """One line for an assembly that cannot be brought up (a missing asset is an OSError)."""
    reason = error if isinstance(error, AssemblyError) else f"cloud assembly {assembly} is incomplete ({error})"
    print(f"error: {reason}" + ("" if isinstance(error, AssemblyError) else f": {RESYNTHESIZE}"), file=sys.stderr)
    return 2


def run_all(assembly: Path, reports: Path) -> int:
    """Every scenario on its own fresh deployment; one line each, then a summary."""
    from localrun.emulator.deployment import LocalDeployment, local_aws
    from localrun.runner import run_scenario, write_report

    started, failures, transitions = time.monotonic(), [], 0
    for number, scenario in enumerate(SCENARIOS.values(), start=1):
        with local_aws():
            try:
                deployment = LocalDeployment.bring_up(assembly)
            except (AssemblyError, OSError) as error:
                return assembly_error(assembly, error)
            try:
                report = run_scenario(deployment, scenario)
            finally:
                deployment.stop_running()
        write_report(report, reports)
        transitions += report["transitions"]
        mark = "✓" if report["as_expected"] else "✗"
        statuses = ", ".join(report["statuses"]) or "no run"
        print(
            f"{mark} [{number:>2}/{len(SCENARIOS)}] {scenario.name:<26} {statuses:<20} "
            f"{len(report['notifications'])} notice(s) {report['transitions']:>3} transitions "
            f"{report['wall_time_s']:5.1f} s",
            flush=True,
        )
        if not report["as_expected"]:
            failures.append(scenario.name)
    print(
        f"{len(SCENARIOS) - len(failures)}/{len(SCENARIOS)} scenarios as expected, {transitions} transitions, "
        f"{time.monotonic() - started:.1f} s; reports in {reports}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
