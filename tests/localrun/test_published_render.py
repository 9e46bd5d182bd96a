"""The demo's last lines (localrun.emulator.published.render): long lists of files are counted, not listed."""

from __future__ import annotations

from localrun.emulator.published import LISTED_FILES, Admitted, HeldBack, Quarantined, RunData, render


def test_files_past_the_first_ten_are_counted_with_their_records_and_reasons() -> None:
    admitted = [Admitted(f"incoming/{i:02d}.csv", 40) for i in range(LISTED_FILES + 3)]
    quarantined = [
        Quarantined(f"incoming/{i:02d}.txt", "not_csv" if i % 2 else "empty", "…", f"quarantine/{i}")
        for i in range(LISTED_FILES + 4)
    ]
    lines = render(RunData(admitted=admitted, quarantined=quarantined))
    assert lines[:LISTED_FILES] == [f"  admitted: incoming/{i:02d}.csv (40 records)" for i in range(LISTED_FILES)]
    assert lines[LISTED_FILES] == "  … 3 more admitted files (120 records)"
    assert lines[-1] == "  … 4 more quarantined files (empty 2, not_csv 2; each reason in its .reason.json)"
    assert sum(line.startswith("  quarantined: ") for line in lines) == LISTED_FILES


def test_a_run_the_check_held_back_is_named_with_its_verdict_and_record() -> None:
    held = HeldBack(
        "run-1", "rejected ratio 0.5 exceeds threshold 0.1", "s3://curated/quarantine/orders/run=run-1.json"
    )
    assert render(RunData(held_back=[held])) == [
        "  admitted files: none",
        "  published: nothing (no partition registered in the catalog)",
        "  held back by the check (not published): run run-1 — rejected ratio 0.5 exceeds threshold 0.1 "
        "(record s3://curated/quarantine/orders/run=run-1.json)",
        "  quarantined files: none",
    ]
