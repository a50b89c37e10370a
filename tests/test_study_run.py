"""The study as one library call: ``run_study`` (what ``simledger experiment`` renders) and ``summarize_study``."""

from __future__ import annotations

from simledger.study.study_run import StudyProgress, run_study, summarize_study


class Recorder(StudyProgress):
    """Record every stage a study starts and every step it reports."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def logged(self, total):
        self.calls.append(("logged", total))
        return lambda event, name: self.calls.append(("ran", event, name))

    def played(self, stage, total):
        self.calls.append(("played", stage, total))
        return lambda events: self.calls.append(("events", stage, events))

    def folded(self, total):
        self.calls.append(("folded", total))
        return lambda path: self.calls.append(("fold", path))


def test_logged_and_in_memory_studies_agree_and_report_their_progress(tmp_path):
    logged, seen = Recorder(), Recorder()
    study = run_study(["baseline", "high_compute_cost"], [101, 102], agents=4, turns=3, out=tmp_path / "logs",
                      workers=1, report=False, progress=logged)
    memory = run_study(["baseline", "high_compute_cost"], [101, 102], agents=4, turns=3, out=tmp_path / "memory",
                       workers=1, report=False, logs=False, progress=seen)

    assert study.planned == memory.planned == 4 and study.held_out_runs == 0
    assert len(study.sweep.ran) == 4 and not study.sweep.failures and memory.sweep is None
    assert sorted((tmp_path / "logs" / "runs").glob("*.db")) and not (tmp_path / "memory" / "runs").exists()
    assert study.summary["regimes"] == memory.summary["regimes"]
    assert [r["regime"] for r in study.summary["regimes"]] == ["baseline", "high_compute_cost"]
    assert "report" not in study.summary
    assert logged.calls[0] == ("logged", 4) and sum(c[0] == "ran" for c in logged.calls) == 4
    played = [c[2] for c in seen.calls if c[0] == "events"]
    assert seen.calls[0] == ("played", "runs", 4) and len(played) == 4 and memory.events == sum(played) > 0
    assert study.events == 0  # nothing was played in memory

    paths = sorted((tmp_path / "logs" / "runs").glob("*.db"))
    folded = Recorder()
    again = summarize_study(paths, tmp_path / "again", report=False, workers=1, progress=folded)
    assert again["regimes"] == study.summary["regimes"]
    assert folded.calls[0] == ("folded", 4) and len(folded.calls) == 5
