"""`python -m localrun demo --assembly cdk.out.local --scenario happy_path` (what `make demo` runs)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from localrun.assembly import AssemblyError
from localrun.runner import ROOT, SCENARIOS, run_scenario, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localrun", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run one scenario on the synthesized assembly")
    demo.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.local")
    demo.add_argument("--scenario", default="happy_path")
    demo.add_argument("--reports", type=Path, default=ROOT / "reports")
    commands.add_parser("list", help="list the scenarios")
    args = parser.parse_args(argv)

    if args.command == "list":
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<26} {scenario.description}")
        return 0
    if args.scenario not in SCENARIOS:
        print(f"error: SCENARIO={args.scenario!r} is not a scenario; one of: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2

    from localrun.deployment import LocalDeployment, local_aws  # moto import is slow: after arg checks

    scenario = SCENARIOS[args.scenario]
    started = time.monotonic()
    print(f"▶ scenario {scenario.name}: {scenario.description}")
    with local_aws():
        try:
            deployment = LocalDeployment.bring_up(args.assembly)
        except AssemblyError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"  stacks up on moto in {time.monotonic() - started:.1f} s "
              f"(landing s3://{deployment.landing_bucket}/{deployment.landing_prefix})")
        try:
            report = run_scenario(deployment, scenario, on_event=lambda line: print(f"  {line}", flush=True))
        finally:
            deployment.stop_running()
    for note in report["notifications"]:
        message = note["message"]
        detail = f"stage {message.get('stage')}: {message.get('error')}" if message.get("status") == "FAILED" else ""
        print(f"  ✉ SNS: {note['subject']} {detail}")
    if not report["notifications"]:
        print("  ✉ SNS: no notification")
    for run in report["pipeline_runs"]:
        print(f"  pipeline {run['name']}: {run['status']} ({run['transitions']} transitions)")
    for stage in report["stage_runs"]:
        print(f"    {stage['stage']:<9} {stage['status']:<9} {stage['transitions']:>3} transitions  "
              f"{' → '.join(stage['path'])}")
    path = write_report(report, args.reports)
    print(f"  {report['transitions']} state transitions = ${report['cost_usd']:.6f} at Standard prices "
          f"(${report['price']['usd_per_1000_standard_transitions']}/1,000, {report['price']['as_of']})")
    print(f"  report: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}; "
          f"wall time {time.monotonic() - started:.1f} s")
    verdict = "as expected" if report["as_expected"] else "NOT as expected"
    print(f"{'✓' if report['as_expected'] else '✗'} {scenario.name}: {verdict}")
    return 0 if report["as_expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
