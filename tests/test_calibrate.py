"""``simledger calibrate``: the spec's validation, the seed protocol, resumable trials, the report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simledger.cli.main import app
from simledger.events.config import InvalidConfig, Rules
from simledger.study.agreement import Agreement, Figure
from simledger.study.calibrate import DISTANCE_CAP, calibrate, compute_loss, write_calibration_report
from simledger.study.calibration_spec import load_calibration, parse_calibration

EXAMPLE = Path(__file__).resolve().parent.parent / "study" / "data" / "example_calibration.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_spec(**changes) -> dict:
    spec = {"calibration": {"name": "small", "trials": 3, "sampler_seed": 7, "regimes": ["high_compute_cost"],
                            "turns": 6},
            "seeds": {"fit": "1001-1002", "held_out": "9001-9002"},
            "candidates": {"job_pay_units": {"type": "int", "low": 10, "high": 40}}}
    for key, value in changes.items():
        spec[key] = value
    return spec


def test_shipped_example_spec_is_valid():
    spec = load_calibration(EXAMPLE)
    assert spec.fit_seeds == tuple(range(1001, 1025)) and spec.held_out_seeds == tuple(range(9001, 9121))
    assert {c.name for c in spec.candidates} <= set(Rules.__struct_fields__)


def test_defaults_are_all_sections_and_120_held_out_seeds():
    data = small_spec()
    del data["seeds"]["held_out"]
    spec = parse_calibration(data)
    assert spec.held_out_seeds == tuple(range(9001, 9121))
    assert "4.1" in spec.sections and "4.7" in spec.sections


@pytest.mark.parametrize("change, message", [
    ({"seeds": {"fit": "1001-1002", "held_out": "9001-9002,1002"}}, "below 9001"),
    ({"seeds": {"fit": "101-112"}}, "fitting seed 101 is outside 1000-8999"),
    ({"seeds": {"fit": "1001-1002", "held_out": "9001-9002"}, "fixed": {"job_pay_units": 3}},
     "both a candidate and fixed"),
    ({"candidates": {"no_such_rule": {"type": "int", "low": 1, "high": 2}}}, "'no_such_rule' is not a Rules field"),
    ({"candidates": {"job_pay_units": {"type": "int", "low": 5, "high": 5}}}, "needs int low < high"),
    ({"candidates": {"study_discount": {"choices": [0.5, 2.0]}}}, "[candidates.study_discount]"),
    ({"candidates": {}}, "names no Rules field"),
    ({"targets": {"sections": ["9.9"]}}, "unknown section '9.9'"),
])
def test_invalid_specs_are_refused_naming_the_key(change, message):
    with pytest.raises(InvalidConfig) as err:
        parse_calibration(small_spec(**change))
    assert message in str(err.value)


def test_a_held_out_seed_cannot_be_a_fitting_seed():
    # the two ranges are disjoint (fitting 1000-8999, held out 9001 on), so a held-out seed named
    # among the fitting seeds is refused by the range check
    with pytest.raises(InvalidConfig, match="outside 1000-8999"):
        parse_calibration(small_spec(seeds={"fit": "1001,9001", "held_out": "9001-9002"}))


def test_loss_is_the_mean_squared_capped_distance():
    def figure(section, distance):
        return Figure(section=section, regime="r", name="f", ours=0, paper=0, distance=distance, tests=[])

    agreement = Agreement(figures=[figure("4.1", 3.0), figure("4.1", -4.0), figure("4.1", float("inf")),
                                   figure("4.7", 100.0)], n_runs={})
    assert compute_loss(agreement, ("4.1",)) == pytest.approx((9 + 16 + DISTANCE_CAP ** 2) / 3)


def test_calibration_runs_resumes_and_reports(tmp_path):
    spec = parse_calibration(small_spec())
    first = calibrate(spec, tmp_path, workers=1)
    assert [t.number for t in first.trials] == [0, 1, 2]
    assert first.trials[0].rules == {"job_pay_units": Rules().job_pay_units}  # the defaults come first
    assert first.chosen == min(first.trials, key=lambda t: t.loss).rules
    more = calibrate(dataclasses.replace(spec, trials=5), tmp_path, workers=1)
    assert [t.number for t in more.trials] == [0, 1, 2, 3, 4]
    assert [t.loss for t in more.trials[:3]] == [t.loss for t in first.trials]  # kept, not re-run
    assert len(calibrate(dataclasses.replace(spec, trials=5), tmp_path, workers=1).trials) == 5
    report = write_calibration_report(more, tmp_path).read_text()
    assert "## Held-out verdict" in report and "| 4 |" in report
    assert (tmp_path / "loss.png").read_bytes().startswith(PNG_MAGIC)
    held = json.loads((tmp_path / "held_out" / "run_summaries.json").read_text())
    assert sorted(r["seed"] for r in held) == [9001, 9002]
    doc = json.loads((tmp_path / "calibration.json").read_text())
    assert doc["chosen_rules"] == more.chosen and len(doc["trials"]) == 5


def test_another_spec_in_the_same_folder_is_refused(tmp_path):
    calibrate(parse_calibration(small_spec()), tmp_path, workers=1)
    other = parse_calibration(small_spec(seeds={"fit": "1003-1004", "held_out": "9001-9002"}))
    with pytest.raises(InvalidConfig, match="of another spec"):
        calibrate(other, tmp_path, workers=1)


def test_cli_calibrate_prints_the_held_out_verdict(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[calibration]\nname = "cli"\ntrials = 2\nregimes = ["baseline"]\nturns = 4\n'
                    '[seeds]\nfit = "1001-1002"\nheld_out = "9001-9002"\n'
                    '[candidates.job_pay_units]\ntype = "int"\nlow = 10\nhigh = 40\n')
    result = CliRunner().invoke(app, ["calibrate", str(spec), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "held-out seeds, chosen rules: indistinguishable from the paper" in result.stdout
    assert (tmp_path / "out" / "report.md").is_file()


def test_cli_calibrate_bad_spec_is_one_line(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[seeds]\nfit = "1001"\nheld_out = "9001"\n[candidates.nope]\ntype = "int"\nlow = 1\nhigh = 2\n')
    result = CliRunner().invoke(app, ["calibrate", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "is not a Rules field" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    missing = CliRunner().invoke(app, ["calibrate", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "not found" in missing.stderr


def test_cli_calibrate_json_gives_the_chosen_rules_and_the_held_out_verdict(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[calibration]\nname = "json"\ntrials = 2\nregimes = ["baseline"]\nturns = 4\n'
                    '[seeds]\nfit = "1001-1002"\nheld_out = "9001-9002"\n'
                    '[candidates.job_pay_units]\ntype = "int"\nlow = 10\nhigh = 40\n')
    result = CliRunner().invoke(app, ["calibrate", str(spec), "--out", str(tmp_path / "out"), "--workers", "1",
                                      "--json"])
    assert result.exit_code == 0 and result.stderr == "", result.output  # no bars into a pipe
    doc = json.loads(result.stdout)
    assert doc["trials"] == 2 and set(doc["chosen"]) == {"job_pay_units"}
    assert 10 <= doc["chosen"]["job_pay_units"] <= 40
    assert doc["held_out"].startswith(("indistinguishable from the paper", "distinguishable"))
    assert doc["report"] == str(tmp_path / "out" / "report.md")
