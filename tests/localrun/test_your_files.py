"""`make demo FILES=...` before anything runs: which name each file lands under, and one line per bad entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from localrun.__main__ import main
from localrun.scenarios.your_files import FilesError, Progress, YourFiles, upload_names


def test_a_file_keeps_its_name_and_a_folder_its_files_paths_inside_it(tmp_path: Path) -> None:
    (tmp_path / "drop" / "2026" / "12").mkdir(parents=True)
    (tmp_path / "drop" / ".hidden").mkdir()
    for name in ("drop/a.csv", "drop/2026/12/b.csv", "drop/.hidden/c.csv", "drop/.DS_Store", "single.csv"):
        (tmp_path / name).write_text("x\n")
    names = upload_names([tmp_path / "drop", tmp_path / "single.csv", tmp_path / "drop" / "a.csv"])
    # hidden files and folders stay out, as `ls` leaves them out; the same file given twice counts once
    assert names == {
        "2026/12/b.csv": tmp_path / "drop/2026/12/b.csv",
        "a.csv": tmp_path / "drop/a.csv",
        "single.csv": tmp_path / "single.csv",
    }


def test_two_files_that_would_land_under_one_name_are_refused(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "orders.csv").write_text("x\n")
    with pytest.raises(FilesError, match=r"would both land as incoming/orders\.csv: rename one$"):
        upload_names([tmp_path / "one" / "orders.csv", tmp_path / "two"])


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("absent.csv", "FILES: '{tmp}/absent.csv': no such file or folder"),
        ("empty-folder", "FILES: '{tmp}/empty-folder' is a folder with no files in it"),
    ],
)
def test_an_entry_that_cannot_be_uploaded_is_one_line(tmp_path: Path, entry: str, said: str) -> None:
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(FilesError) as raised:
        upload_names([tmp_path / entry])
    assert str(raised.value) == said.format(tmp=tmp_path)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--files"], "error: FILES is empty: give one or more files or folders, e.g. FILES=samples/orders.csv\n"),
        (["--files", "nope.csv"], "error: FILES: 'nope.csv': no such file or folder\n"),
        (
            ["--scenario", "crawl_failed", "--files", "samples/orders.csv"],
            "error: FILES runs the happy path on your files: SCENARIO='crawl_failed' cannot be given with it\n",
        ),
    ],
)
def test_the_cli_answers_bad_files_in_one_line_before_anything_starts(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert main(["demo", *argv]) == 2
    assert capsys.readouterr().err == said


def test_the_last_line_says_how_the_runs_ended_and_what_s3_refused() -> None:
    yours = YourFiles({"a.csv": Path("a.csv"), "b.csv": Path("b.csv")}, refused={"b.csv": "KeyTooLongError"})
    succeeded = {"statuses": ["SUCCEEDED", "SUCCEEDED"], "as_expected": True, "problems": []}
    assert yours.verdict(succeeded) == (
        "every run SUCCEEDED (SUCCEEDED, SUCCEEDED); each upload admitted or quarantined with a reason; "
        "1 upload(s) refused by S3 (above)"
    )
    failed = {"statuses": ["FAILED"], "as_expected": False, "problems": ["1 file(s) left under incoming/: [...]"]}
    assert YourFiles({}).verdict(failed) == "NOT every run succeeded (FAILED); 1 problem(s) above"


def test_progress_is_a_line_every_few_seconds_and_none_for_a_short_loop(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([0.0, 1.0, 6.0, 7.0, 12.5, 13.0])  # the start, then one reading per step
    monkeypatch.setattr("localrun.scenarios.your_files.time.monotonic", lambda: next(clock))
    progress = Progress("files landed", 5)
    for _ in range(5):
        progress.step("2 runs")
    # at 6.0 s and 12.5 s; the last step (5/5) prints nothing: the loop is over
    assert capsys.readouterr().out == "  … 2/5 files landed (2 runs)\n  … 4/5 files landed (2 runs)\n"


def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "locked.csv").write_text("x\n")
    monkeypatch.setattr("localrun.scenarios.your_files.os.access", lambda path, mode: Path(path).name != "locked.csv")
    with pytest.raises(FilesError) as raised:
        upload_names([tmp_path])
    assert str(raised.value) == f"FILES: '{tmp_path}/locked.csv' cannot be read (permission denied)"


def test_the_dag_demo_refuses_files_without_a_csv_its_sensor_would_wait_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "orders.json").write_text("{}")
    assert main(["dag", "--files", str(tmp_path / "orders.json")]) == 2
    said = "error: FILES has no .csv: the DAG's sensor waits for one under incoming/ (6 hours)\n"
    assert capsys.readouterr().err == said
