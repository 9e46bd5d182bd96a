"""`python -m localrun demo --assembly cdk.out.local --scenario happy_path` (what `make demo` runs);
`--files a.csv exports/` runs the happy path on your own files (`make demo FILES=...`)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

# Nothing here imports moto, the runner or Spark at the top: `list`, a misspelt scenario and a stale
# assembly are answered in a fraction of a second; run_demo and run_all import what a run needs.
from localrun.console import configure_logging, log_to_file
from localrun.emulator.assembly import RESYNTHESIZE, AssemblyError, CloudAssembly, newer_sources
from localrun.emulator.aws_environment import local_aws_environment
from localrun.scenarios.actions import SAMPLES
from localrun.scenarios.catalogue import SCENARIOS
from localrun.scenarios.scenario import Scenario
from localrun.scenarios.your_files import FilesError, YourFiles, upload_names
from stacks import pipeline_contract as contract
from stacks.common.paths import REPO_ROOT

Verdict = Callable[[dict[str, Any]], str]  # a run report -> the demo's last words


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.command)
    if args.command == "list":
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<26} {scenario.description}")
        return 0
    if args.command == "demo":
        try:
            scenario, verdict = _demo_scenario(args.scenario, args.files)
        except ValueError as error:  # a misspelt scenario, FILES that cannot be uploaded (FilesError)
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.command == "dag":
        try:
            files = upload_names(args.files if args.files is not None else [SAMPLES / "orders.csv"])
        except FilesError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if not any(name.endswith(".csv") for name in files):  # the DAG's sensor waits for incoming/*.csv
            print("error: FILES has no .csv: the DAG's sensor waits for one under incoming/ (6 hours)", file=sys.stderr)
            return 2
    if problem := preflight(args.assembly, args.reports):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    # Before moto is imported: it reads the machine's AWS profile at import.
    with local_aws_environment():
        if args.command == "all":
            return run_all(args.assembly, args.reports, args.jobs)
        if args.command == "dag":
            from localrun import outer_loop

            print(f"▶ the DAG {outer_loop.DAG_ID} on the local stage machines (moto server), {len(files)} file(s)")
            return outer_loop.demo(args.assembly, files, log_to_file(args.reports / "dag.log"))
        return run_demo(args.assembly, scenario, args.reports, verdict=verdict)


def _demo_scenario(name: str, files: list[Path] | None) -> tuple[Scenario, Verdict | None]:
    """The catalogue's scenario, or the happy path on your files (with its own last line); ValueError
    says what is wrong in one line."""
    if files is not None:
        if name != "happy_path":
            raise FilesError(f"FILES runs the happy path on your files: SCENARIO={name!r} cannot be given with it")
        yours = YourFiles(upload_names(files))
        return yours.scenario(), yours.verdict
    if name not in SCENARIOS:
        raise ValueError(f"SCENARIO={name!r} is not a scenario; one of: {', '.join(SCENARIOS)}")
    return SCENARIOS[name], None


def _jobs(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 8:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to 8")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    """The `demo`, `all` and `list` subcommands and their options."""
    parser = argparse.ArgumentParser(prog="python -m localrun", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run one scenario on the synthesized assembly")
    demo.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out.local")
    demo.add_argument("--scenario", default="happy_path")
    demo.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    demo.add_argument(
        "--files",
        type=Path,
        nargs="*",
        help="run the happy path on these files and folders (a folder's files keep their paths under incoming/)",
    )
    every = commands.add_parser("all", help="run every scenario, one fresh deployment each")
    every.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out.local")
    every.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    every.add_argument(
        "--jobs",
        type=_jobs,
        default=min(2, os.cpu_count() or 1),
        help="scenarios at a time (default 2; 1 on a one-core machine)",
    )
    dag = commands.add_parser("dag", help="the MWAA outer loop: the DAG run once against the local stage machines")
    dag.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out.local")
    dag.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    dag.add_argument(
        "--files", type=Path, nargs="*", help="these files and folders under incoming/ (default: the sample)"
    )
    commands.add_parser("list", help="list the scenarios")
    return parser


def run_demo(assembly: Path, scenario: Scenario, reports: Path, *, verdict: Verdict | None = None) -> int:
    """One scenario on a fresh deployment, narrated as it runs, then its outcome and cost (`verdict`:
    the last line's words, "as expected" or "NOT as expected" without one)."""
    from localrun.emulator import published
    from localrun.emulator.deployment import LocalDeployment, local_aws
    from localrun.emulator.glue_standin import spark_session, start_spark_in_background
    from localrun.runner import run_scenario, write_report
    from ops import why

    started = time.monotonic()
    print(f"▶ scenario {scenario.name}: {scenario.description}")
    log_file = log_to_file(reports / f"{scenario.name}.log")
    if scenario.runs_spark:
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
        data = published.run_data(deployment, lambda: spark_session(log_file=log_file))
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
    for problem in report["problems"]:  # what the scenario's check found wrong with the data or the lease
        print(f"  ✗ {problem}")
    words = verdict(report) if verdict else ("as expected" if report["as_expected"] else "NOT as expected")
    print(f"{'✓' if report['as_expected'] else '✗'} {scenario.name}: {words}")
    return 0 if report["as_expected"] else 1


def _shown(path: Path) -> Path:
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


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
    run the old code), a reports folder the report could not be written to after the run, or no Java
    for the Spark that runs the Glue job (the transform would fail with JAVA_GATEWAY_EXITED)."""
    if problem := java_problem(os.environ):
        return problem
    try:
        CloudAssembly.load(assembly)  # missing or unreadable: said before Spark and moto start
    except AssemblyError as error:
        return str(error)
    if newer := newer_sources(assembly):
        more = f" and {len(newer) - 1} more source file(s)" if len(newer) > 1 else ""
        first = newer[0].relative_to(REPO_ROOT) if newer[0].is_relative_to(REPO_ROOT) else newer[0]
        return f"cloud assembly {assembly} is older than {first}{more}: {RESYNTHESIZE}"
    try:
        reports.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=reports):
            pass
    except OSError as error:
        return f"cannot write reports to {reports} ({error.strerror or error}): pass --reports <a writable folder>"
    return None


JAVA_NEEDED = "the local Glue job runs Spark on a Java runtime (Java 17: apt install openjdk-17-jre-headless)"


def java_problem(environ: Mapping[str, str]) -> str | None:
    """No Java where Spark's launcher looks (spark-class): $JAVA_HOME/bin/java, else `java` on PATH."""
    java_home = environ.get("JAVA_HOME")
    if java_home:
        if os.access(Path(java_home, "bin", "java"), os.X_OK):
            return None
        return f"JAVA_HOME = {java_home!r} has no bin/java: {JAVA_NEEDED}; point JAVA_HOME at one or unset it"
    if shutil.which("java", path=environ.get("PATH", "")):
        return None
    return f"no Java: JAVA_HOME is not set and there is no java on PATH; {JAVA_NEEDED}"


def assembly_error(assembly: Path, error: Exception) -> int:
    """One line for an assembly that cannot be brought up (a missing asset is an OSError)."""
    reason = error if isinstance(error, AssemblyError) else f"cloud assembly {assembly} is incomplete ({error})"
    print(f"error: {reason}" + ("" if isinstance(error, AssemblyError) else f": {RESYNTHESIZE}"), file=sys.stderr)
    return 2


def run_all(assembly: Path, reports: Path, jobs: int) -> int:
    """Every scenario on its own fresh deployment, `jobs` at a time (a process each: moto and Spark
    are per process); one line each as it ends, then a summary."""
    from localrun.runner import run_on_fresh_deployment, run_order, start_scenario_process

    started, failures, transitions = time.monotonic(), [], 0
    log_file = log_to_file(reports / "scenarios.log")  # Spark's and moto's lines, as in the demo
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),  # a new interpreter: nothing of this one's moto
        initializer=start_scenario_process,
        initargs=(log_file,),
    ) as pool:
        runs = [pool.submit(run_on_fresh_deployment, assembly, name, reports, log_file) for name in run_order(reports)]
        for number, run in enumerate(as_completed(runs), start=1):
            try:
                line = run.result()
            except (AssemblyError, OSError) as error:
                pool.shutdown(cancel_futures=True)
                return assembly_error(assembly, error)
            transitions += line["transitions"]
            mark = "✓" if line["as_expected"] else "✗"
            print(
                f"{mark} [{number:>2}/{len(SCENARIOS)}] {line['name']:<26} {line['statuses']:<20} "
                f"{line['notices']} notice(s) {line['transitions']:>3} transitions {line['wall_time_s']:5.1f} s",
                flush=True,
            )
            if not line["as_expected"]:
                failures.append(line["name"])
    print(
        f"{len(SCENARIOS) - len(failures)}/{len(SCENARIOS)} scenarios as expected ({jobs} at a time), "
        f"{transitions} transitions, {time.monotonic() - started:.1f} s; reports in {_shown(reports)}, "
        f"Spark and moto logs: {_shown(log_file)}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
