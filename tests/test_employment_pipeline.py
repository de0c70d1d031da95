"""Employment and benefit outcomes end to end on the session's synthetic records (150k people).

`jdl synth` plants a rise in the one-year employment rate of participants (truth.json); jdl's
estimate must find it. Rows of the spell tables breaking the contract reach rejects.csv, and a
changed employment file misses the feature cache and is named by `jdl reproduce`. (Other layouts
of the spell tables: test_employment_layouts.py.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jdl.cli import main
from tests.conftest import write_spec

pytestmark = pytest.mark.slow
# |estimate - planted sample ATT| for the large cohort (about 4,900 matched participants, standard
# error about 0.9 percentage points): three standard errors, plus matching's small bias
EMPLOYMENT_TOLERANCE = 0.03
MEASURES = "[reoffending_rate, employment_rate, days_employed, benefit_rate, days_on_out_of_work_benefit]"
COVARIATES = ("[age_at_index, sex, ethnicity, index_offence_group, index_disposal, prior_proven_offences, "
              "prior_custodial_sentences, years_since_first_offence, copas_rate, employed_at_index, "
              "days_employed_before_index, on_benefit_at_index]")


def spell_spec(path: Path, records_dir: Path, cohort: str, *, employment: Path | None = None,
          benefits: Path | None = None) -> Path:
    spec = write_spec(path, records_dir, cohort=cohort,
                      extra=f"covariates: {COVARIATES}\noutcomes:\n  measures: {MEASURES}\n")
    national = records_dir / "national"
    events_line = f"    events: {national / 'events'}\n"
    tables = (f"    employment: {employment or national / 'employment'}\n"
              f"    benefits: {benefits or national / 'benefits'}\n")
    spec.write_text(spec.read_text().replace(events_line, events_line + tables))
    return spec


def run_quietly(spec: Path, out: Path, cache: Path | None, *extra: str) -> dict:
    args = ["run", str(spec), "--out", str(out), "--quiet"]
    args += ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    assert main([*args, *extra]) == 0
    return json.loads((out / "manifest.json").read_text())


def results_of(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_the_planted_employment_effect_is_found_and_reported(
    synthetic_records: Path, truth: dict, tmp_path: Path
) -> None:
    spec = spell_spec(tmp_path / "spec.yaml", synthetic_records, "large")
    manifest = run_quietly(spec, tmp_path / "run", None)
    assert {"employment", "benefits"} <= set(manifest["inputs"])
    results = results_of(tmp_path / "run")
    planted = truth["cohorts"]["large"]["employment"]["true_effect_employment_rate"]
    assert planted > 0.03  # the generator plants about five percentage points
    employment = results["measures"]["employment_rate"]
    assert abs(employment["difference"] - planted) < EMPLOYMENT_TOLERANCE
    assert employment["significant"] and employment["lower_is_better"] is False
    assert results["measures"]["benefit_rate"]["lower_is_better"] is True
    assert results["measures"]["days_employed"]["difference"] > 0

    report = (tmp_path / "run" / "report.md").read_text()
    assert ("the proportion employed at any point in the one-year period for Test Organisation participants "
            "is higher than for the matched comparison group: higher by between").lower() in report.lower()
    assert "national employment (HMRC) and benefit (DWP) data" in report
    assert "The analysis measures proven reoffending only" not in report


def test_spell_rows_breaking_the_contract_reach_the_rejects_file(synthetic_records: Path, tmp_path: Path) -> None:
    reference = run_quietly(spell_spec(tmp_path / "spec.yaml", synthetic_records, "small"), tmp_path / "reference", None)
    assert reference["features"]["layout"].startswith("aligned")
    employment = tmp_path / "employment"
    shutil.copytree(synthetic_records / "national" / "employment", employment)
    bad = pa.table({
        "person_id": pa.array([None, 17], pa.int64()),
        "start_date": pa.array([None, "2017-05-02"], pa.string()).cast(pa.date32()),
        "end_date": pa.array([None, "2017-05-01"], pa.string()).cast(pa.date32()),
    })
    pq.write_table(bad, employment / "zz-late-additions.parquet")  # ids outside every block's own files
    spec = spell_spec(tmp_path / "bad.yaml", synthetic_records, "small", employment=employment)
    run_quietly(spec, tmp_path / "run", None)
    rejects = (tmp_path / "run" / "rejects.csv").read_text().splitlines()
    assert "employment,,,employment table: person_id is missing or not a whole number" in rejects
    assert "employment,,17,employment table: end_date is before start_date" in rejects
    results, before = results_of(tmp_path / "run"), results_of(tmp_path / "reference")
    assert results["measures"] == before["measures"]  # the rejected rows are left out
    assert "2 rows of the employment table break the data contract" in " ".join(results["warnings"])


def test_a_changed_employment_file_misses_the_cache_and_is_named_by_reproduce(
    synthetic_records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    employment = tmp_path / "employment"
    shutil.copytree(synthetic_records / "national" / "employment", employment)
    spec = spell_spec(tmp_path / "spec.yaml", synthetic_records, "medium", employment=employment)
    cache = tmp_path / "cache"
    cold = run_quietly(spec, tmp_path / "cold", cache)
    assert cold["features"]["cache"] == "miss, stored"
    warm = run_quietly(spec, tmp_path / "warm", cache)
    assert warm["features"]["cache"] == "hit" and warm["features"]["participants_cache"] == "hit"
    assert (tmp_path / "cold" / "results.json").read_bytes() == (tmp_path / "warm" / "results.json").read_bytes()

    # everyone in the first file loses their last spell
    part = employment / "part-00000.parquet"
    table = pq.read_table(part)
    ids = table.column("person_id").to_numpy()
    last = [i for i in range(len(ids)) if i + 1 == len(ids) or ids[i + 1] != ids[i]]
    keep = sorted(set(range(len(ids))) - set(last))
    pq.write_table(table.take(pa.array(keep)), part)
    changed = run_quietly(spec, tmp_path / "changed", cache)
    assert changed["features"]["cache"] == "miss, stored"
    assert changed["inputs"]["employment"]["sha256"] != cold["inputs"]["employment"]["sha256"]

    capsys.readouterr()
    status = main(["reproduce", "--quiet", str(tmp_path / "cold"), "--out", str(tmp_path / "rerun")])
    out = capsys.readouterr().out
    assert status == 1
    assert f"employment: {part} changed content" in out
