"""`make demo FILES=...`: the happy path on a user's own files, through the CLI as `make demo` runs it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from localrun.emulator.deployment import LocalDeployment
from localrun.scenarios.your_files import every_file_accounted_for
from tests.scenarios.test_cli import ROOT, localrun

SAMPLES = ROOT / "samples"


def test_a_drop_of_odd_files_is_accounted_for_and_nothing_that_failed_its_check_is_published(
    local_assembly: Path, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    shutil.copy(SAMPLES / "orders.csv", drop / "good.csv")  # 40 rows, 2 of them bad
    shutil.copy(SAMPLES / "orders_mostly_bad.csv", drop / "sub" / "mostly_bad.csv")  # 10 rows, 7 bad: 9/50 > 10%
    (drop / "header.csv").write_text("x,y\n1,2\n")
    (drop / "orders.json").write_text("{}")
    (drop / "empty.csv").write_text("")
    deep = drop.joinpath(*["d" * 230] * 5)  # a key over S3's 1,024 bytes: S3 refuses the upload itself
    deep.mkdir(parents=True)
    shutil.copy(SAMPLES / "orders.csv", deep / "long.csv")

    result = localrun(
        "demo", "--assembly", str(local_assembly), "--files", str(drop), "--reports", str(tmp_path / "reports")
    )
    out = result.stdout.splitlines()
    assert result.returncode == 1, result.stderr[-2000:]  # a run failed: the check refused its rows
    assert any(line.startswith("  ✗ upload refused by S3: ") and "Your key is too long" in line for line in out)
    assert "  admitted: incoming/good.csv (40 records)" in out
    assert "  admitted: incoming/sub/mostly_bad.csv (10 records)" in out
    assert "  published: nothing (no partition registered in the catalog)" in out
    [held] = [line for line in out if line.startswith("  held back by the check (not published): run ")]
    assert " — rejected ratio 0.1800 (9/50) exceeds threshold 0.1000 (record s3://" in held
    [rejected] = [line for line in out if line.startswith("  rejected rows: ")]
    assert rejected.startswith("  rejected rows: 9 (")
    quarantined = sorted(line.split(" — ")[0] for line in out if line.startswith("  quarantined: "))
    assert quarantined == [f"  quarantined: incoming/{n}" for n in ("empty.csv", "header.csv", "orders.json")]
    # every upload S3 took is admitted or quarantined (the check found no problem), one refused
    assert re.fullmatch(
        r"✗ files: NOT every run succeeded \(FAILED(, SUCCEEDED)*\); 1 upload\(s\) refused by S3 \(above\)", out[-1]
    ), out[-1]
    assert (tmp_path / "reports" / "files.json").is_file()


def test_the_check_finds_a_file_left_waiting(deployment: LocalDeployment) -> None:
    deployment.put_object_without_event(f"{deployment.incoming_prefix}late.csv", b"order_id\n")
    assert every_file_accounted_for(deployment, 1, lease_released=True) == [
        f"1 file(s) left under {deployment.incoming_prefix}: ['{deployment.incoming_prefix}late.csv']",
        "1 file(s) uploaded, 0 admitted and 0 quarantined with a reason",
    ]
