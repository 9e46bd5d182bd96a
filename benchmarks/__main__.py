"""Benchmarks: synth time and end-to-end local run time, each against a baseline of the same run.

    python -m benchmarks [--runs 5] [--warmup 1] [--stage dev] [--max-ratio 2] [--check]
                         [--assembly cdk.out.local] [--suite-runs 1] [--fresh-clone]

Synth: the full app against a one-bucket CDK app, each synthesized in a fresh process.
Local run (with --assembly): `make demo`'s run (happy path) and the whole scenario suite against
a one-state state machine executed on moto, each in a fresh process. Fresh clone (with
--fresh-clone): `make demo` in a new clone of the committed HEAD, installs included, once. Targets:
app synth <= 2x its baseline; demo <= 15 s; all scenarios <= 60 s; fresh-clone demo <= 60 s.

Every run starts a new Python process, so jsii's Node start-up and the imports are in both
numbers, as they are in `cdk synth`. Baseline and app runs alternate, so a busy machine slows
both alike. The full app includes cdk-nag (it runs inside synth). Target: app <= 2x baseline.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from stacks.common.paths import REPO_ROOT

# A one-bucket app on the same Node (stacks.node_runtime) as the real one.
BASELINE = textwrap.dedent(
    """
    import sys
    import stacks.node_runtime
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    app = cdk.App(outdir=sys.argv[1])
    s3.Bucket(cdk.Stack(app, "Baseline"), "Bucket")
    app.synth()
    """
)
# The real app for one stage, with its cdk-nag plugins, as `cdk synth` runs it.
FULL_APP = textwrap.dedent(
    """
    import sys
    import app
    from stacks.config.stages import config_for

    cdk_app, _ = app.build_app(config=config_for(sys.argv[2]), outdir=sys.argv[1])
    cdk_app.synth()
    """
)


# One Pass state executed on moto in a fresh process: Python, moto and boto3 start-up, one execution.
LOCAL_BASELINE = textwrap.dedent(
    """
    import json, time
    from localrun.emulator.deployment import local_aws
    import boto3

    with local_aws():
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(name="baseline", roleArn="arn:aws:iam::123456789012:role/r",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, name="one", input="{}")["executionArn"]
        while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
            time.sleep(0.05)
    """
)


def _clean_env() -> dict[str, str]:
    # CDK_* variables (context, outdir) from a surrounding `cdk` call would change what is measured.
    return {key: value for key, value in os.environ.items() if not key.startswith("CDK_")}


def time_command(command: Sequence[str], *, cwd: Path = REPO_ROOT, env: Mapping[str, str] | None = None) -> float:
    """Wall time of one run of `command`, in seconds; raises if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else _clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return elapsed


def time_synth(code: str, stage: str) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-cdk-") as outdir:
        return time_command([sys.executable, "-c", code, outdir, stage])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs of each (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each first (default 1)")
    parser.add_argument("--stage", default="dev", help="stage config of the full app (default dev)")
    parser.add_argument("--max-ratio", type=float, default=2.0, help="target: app median / baseline median")
    parser.add_argument("--check", action="store_true", help="exit 1 when the ratio is over the target")
    parser.add_argument("--assembly", type=Path, help="a synthesized local-stage assembly: also time local runs")
    parser.add_argument("--suite-runs", type=int, default=1, help="runs of the whole scenario suite (default 1)")
    parser.add_argument("--fresh-clone", action="store_true", help="also time `make demo` in a fresh clone (once)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")

    print(
        f"synth benchmark: one-bucket baseline vs the {args.stage} app with cdk-nag, "
        f"{args.warmup} warm-up + {args.runs} runs each, fresh process per run",
        flush=True,
    )
    baseline: list[float] = []
    full: list[float] = []
    for run in range(1, args.warmup + args.runs + 1):
        warmup = run <= args.warmup
        label = f"warm-up {run}/{args.warmup}" if warmup else f"run {run - args.warmup}/{args.runs}"
        base_s = time_synth(BASELINE, args.stage)
        full_s = time_synth(FULL_APP, args.stage)
        print(f"  {label:>12}: baseline {base_s:5.2f} s   app {full_s:5.2f} s", flush=True)
        if not warmup:
            baseline.append(base_s)
            full.append(full_s)

    base_median, full_median = statistics.median(baseline), statistics.median(full)
    ratio = full_median / base_median
    verdict = "within" if ratio <= args.max_ratio else "OVER"
    print(f"median baseline {base_median:.2f} s (min {min(baseline):.2f})")
    print(f"median app      {full_median:.2f} s (min {min(full):.2f})")
    print(f"ratio           {ratio:.2f}x ({verdict} the {args.max_ratio:g}x target)")

    if args.assembly:
        bench_local_runs(args.assembly, runs=args.runs, suite_runs=args.suite_runs)
    if args.fresh_clone:
        bench_fresh_clone()
    return 1 if args.check and ratio > args.max_ratio else 0


def bench_local_runs(assembly: Path, *, runs: int, suite_runs: int) -> None:
    """The demo's run and the scenario suite, against one moto execution in a fresh process."""
    python = sys.executable
    demo = [
        python,
        "-m",
        "localrun",
        "demo",
        "--assembly",
        str(assembly),
        "--scenario",
        "happy_path",
        "--reports",
        tempfile.mkdtemp(prefix="bench-reports-"),
    ]
    suite = [
        python,
        "-m",
        "localrun",
        "all",
        "--assembly",
        str(assembly),
        "--reports",
        tempfile.mkdtemp(prefix="bench-reports-"),
    ]
    print(f"local-run benchmark: {runs} runs of the demo and of the baseline, {suite_runs} of the suite", flush=True)
    baseline: list[float] = []
    demos: list[float] = []
    for run in range(1, runs + 1):
        baseline.append(time_command([python, "-c", LOCAL_BASELINE]))
        demos.append(time_command(demo))
        print(f"  run {run}/{runs}: baseline {baseline[-1]:5.2f} s   demo {demos[-1]:5.2f} s", flush=True)
    suites = []
    for run in range(1, suite_runs + 1):
        suites.append(time_command(suite))
        print(f"  suite run {run}/{suite_runs}: {suites[-1]:5.1f} s", flush=True)
    base, demo_s, suite_s = statistics.median(baseline), statistics.median(demos), statistics.median(suites)
    print(f"median baseline (one moto execution) {base:.2f} s")
    print(f"median demo run     {demo_s:5.2f} s = {demo_s / base:.1f}x baseline (target <= 15 s)")
    print(f"median all scenarios {suite_s:5.1f} s = {suite_s / base:.1f}x baseline (target <= 60 s)")


def bench_fresh_clone() -> None:
    """`make demo` in a new clone of the committed HEAD: venvs, installs (uv's cache as it is on this
    machine), Node, the CDK CLI, the local synth and the run, as a first-time user gets them."""
    with tempfile.TemporaryDirectory(prefix="bench-clone-") as parent:
        clone = Path(parent) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
        # As a new shell would run it: not inside this make (its flags) nor this repository's venv.
        env = {k: v for k, v in _clean_env().items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV")}
        venv_bin = str(REPO_ROOT / ".venv" / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
        seconds = time_command(["make", "demo"], cwd=clone, env=env)
    print(f"fresh-clone make demo {seconds:5.1f} s, installs included (target <= 60 s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
