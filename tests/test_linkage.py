"""Linking cohort rows to national person ids: candidate selection, each rule, order, ties."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from rapidfuzz.distance import JaroWinkler

from jdl.errors import JdlUserError
from jdl.linkage import (
    LINKAGE_RULES,
    CandidateKeys,
    candidate_keys,
    link_cohort,
    register_rule,
    select_candidates,
)
from jdl.linkage.normalise import normalise_name, pnc_in_keys, pnc_match_keys

ALL_RULES = ["pnc_id", "exact_identity", "fuzzy_identity"]


def people_table(rows: list[tuple]) -> pd.DataFrame:
    """(person_id, pnc_id, forename, surname, date_of_birth, sex) -> a national people table."""
    frame = pd.DataFrame(
        rows, columns=["person_id", "pnc_id", "forename", "surname", "date_of_birth", "sex"]
    )
    frame["person_id"] = frame["person_id"].astype("int64")
    frame["pnc_id"] = frame["pnc_id"].astype("string")
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"])
    frame["region"] = "Wales"
    return frame


def cohort_table(rows: list[tuple]) -> pd.DataFrame:
    """(row_number, pnc_id, forename, surname, date_of_birth, sex, intervention_start)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "row_number",
            "pnc_id",
            "forename",
            "surname",
            "date_of_birth",
            "sex",
            "intervention_start",
        ],
    )
    frame["row_number"] = frame["row_number"].astype("int64")
    frame["pnc_id"] = frame["pnc_id"].astype("string")
    for column in ("date_of_birth", "intervention_start"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


START = "2017-01-01"
PEOPLE = people_table(
    [
        (101, "2001/0012345Z", "Alan", "Turing", "1980-06-23", "M"),
        (102, None, "Ada", "Lovelace", "1985-12-10", "F"),
        (103, "95/7654321A", "Grace", "Hopper", "1970-01-01", "F"),
        (104, None, "Siobhan", "O'Neil", "1990-05-05", "F"),
        (105, None, "John", "Smith", "1975-07-07", "M"),
        (106, None, "John", "Smith", "1975-07-07", "M"),
        (107, None, "Catherine", "Zeta-Jones", "1969-09-25", "F"),
        (108, None, "Unrelated", "Person", "1980-06-23", "F"),
    ]
)


def link(cohort: pd.DataFrame, people: pd.DataFrame = PEOPLE, *, rules=ALL_RULES, threshold=0.92):
    return link_cohort(cohort, people, rules=list(rules), fuzzy_threshold=threshold)


def linked_pairs(result) -> dict[int, tuple[int, str]]:
    return {int(r.row_number): (int(r.person_id), str(r.rule)) for r in result.links.itertuples()}


def reasons(result) -> dict[int, str]:
    return dict(zip(result.unlinked["row_number"], result.unlinked["reason"], strict=True))


# -- normalisation


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("O'Neil", "ONEIL"),
        ("o neil", "ONEIL"),
        ("Smith-Jones", "SMITHJONES"),
        ("José", "JOSE"),
        ("  Zoë ", "ZOE"),
        ("Ｊｏｈｎ", "JOHN"),  # full-width letters fold under NFKD
        ("3rd", "RD"),
        (None, ""),
    ],
)
def test_name_normalisation(name: str | None, expected: str) -> None:
    assert normalise_name(name) == expected


def test_pnc_match_keys_agree_across_written_forms() -> None:
    written = pd.Series(
        [
            "2001/0012345Z",
            "01/12345z",
            " 2001 / 0012345 Z",
            "1901/12345Z",
            "2001/12345Y",
            "junk",
            None,
        ],
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    keys = pnc_match_keys(written)
    assert keys.index.tolist() == written.index.tolist()
    assert keys.tolist()[:5] == ["01/12345Z"] * 4 + ["01/12345Y"]
    assert keys.iloc[5:].isna().all()


def test_fast_pnc_membership_equals_key_membership() -> None:
    rng = np.random.default_rng(5)
    spellings = []
    for _ in range(3000):
        year = int(rng.integers(0, 100))
        serial = int(rng.integers(0, 10 ** int(rng.integers(1, 8))))
        century = ["", "19", "20", "18"][int(rng.integers(0, 4))]
        pad = int(rng.integers(0, 9))
        check = "ABZ"[int(rng.integers(0, 3))]
        text = f"{century}{year:02d}/{str(serial).zfill(pad)}{check}"
        spellings.append(text.lower() if rng.random() < 0.2 else text)
    series = pd.Series(spellings)
    all_keys = pnc_match_keys(series)
    wanted = frozenset(all_keys.dropna().iloc[::7])
    expected = all_keys.isin(wanted).fillna(False).to_numpy(dtype=bool)
    assert expected.sum() > 100
    assert (pnc_in_keys(series, wanted) == expected).all()



def _keys_by_regex_replacement(pnc_ids: pd.Series) -> pd.Series:
    """The plain formulation of a PNC key: compact, upper-case, then one regex replacement per value."""
    text = pa.array(pnc_ids.astype("string[pyarrow]").array)
    compact = pc.utf8_upper(pc.replace_substring_regex(text, r"\s", ""))
    valid = pc.fill_null(pc.match_substring_regex(compact, r"^(?:19|20)?\d{2}/\d{1,7}[A-Z]$"), False)
    keys = pc.if_else(valid, pc.replace_substring_regex(compact, r"^(?:19|20)?(\d{2})/0*(\d+)([A-Z])$",
                                                        r"\1/\2\3"), pa.scalar(None, compact.type))
    return pd.Series(keys.to_pandas(types_mapper=pd.ArrowDtype).array, index=pnc_ids.index).astype("string")


@pytest.mark.parametrize("seed", [3, 11])
def test_pnc_match_keys_equal_the_regex_replacement_of_every_value(seed: int) -> None:
    # the century is dropped by slicing where what is left is a key; other values use the regex
    rng = np.random.default_rng(seed)
    spellings: list[str | None] = ["2000/0000000B", "20/5B", "2020/5B", "1909/1A", "2019/1234567Z",
                                   "2019/12345678Z", "19/012A", "xx", "", None, " 99/0A ", "2099/0a"]
    for _ in range(5000):
        year = int(rng.integers(0, 100))
        serial = int(rng.integers(0, 10 ** int(rng.integers(1, 8))))
        century = ["", "19", "20", "18", "2"][int(rng.integers(0, 5))]
        check = "ABZ1"[int(rng.integers(0, 4))]
        text = f"{century}{year:02d}/{str(serial).zfill(int(rng.integers(0, 9)))}{check}"
        spellings.append(text.lower() if rng.random() < 0.1 else (f" {text}" if rng.random() < 0.05 else text))
    series = pd.Series(spellings, index=np.arange(len(spellings)) * 3)
    keys = pnc_match_keys(series)
    expected = _keys_by_regex_replacement(series)
    assert keys.notna().sum() > 2000 and keys.isna().sum() > 100
    pd.testing.assert_series_equal(keys, expected)


# -- candidate selection


def test_candidate_keys() -> None:
    cohort = cohort_table(
        [
            (2, "01/12345z", "Alan", "Turing", "1980-06-23", "M", START),
            (3, None, "Ada", "Lovelace", "1985-12-10", "F", START),
        ]
    )
    keys = candidate_keys(cohort)
    assert keys.pnc_ids == frozenset({"01/12345Z"})
    assert keys.blocks == frozenset(
        {
            ((dt.date(1980, 6, 23) - dt.date(1970, 1, 1)).days, "M"),
            ((dt.date(1985, 12, 10) - dt.date(1970, 1, 1)).days, "F"),
        }
    )


def test_select_candidates_returns_exactly_the_linkable_rows() -> None:
    keys = CandidateKeys(
        pnc_ids=frozenset({"95/7654321A"}),
        blocks=frozenset({((dt.date(1980, 6, 23) - dt.date(1970, 1, 1)).days, "M")}),
    )
    selected = select_candidates(PEOPLE, keys)
    # 101: same block; 103: by PNC; 108 shares the date of birth but not the sex.
    assert selected["person_id"].tolist() == [101, 103]
    assert list(selected.columns) == list(PEOPLE.columns)


@pytest.mark.parametrize(
    "as_dates",
    [
        lambda s: s.dt.date,  # Python date objects, as from a Parquet date column
        lambda s: s.astype("datetime64[us]"),
        lambda s: s.astype("datetime64[s]"),
        lambda s: s.dt.strftime("%Y-%m-%d"),
    ],
)
def test_select_candidates_accepts_date_representations(as_dates) -> None:
    people = PEOPLE.assign(
        date_of_birth=as_dates(PEOPLE["date_of_birth"]), sex=PEOPLE["sex"].str.lower()
    )
    keys = CandidateKeys(
        pnc_ids=frozenset(),
        blocks=frozenset({((dt.date(1975, 7, 7) - dt.date(1970, 1, 1)).days, "M")}),
    )
    assert select_candidates(people, keys)["person_id"].tolist() == [105, 106]


def test_select_candidates_with_no_keys_and_empty_partitions() -> None:
    assert select_candidates(PEOPLE, CandidateKeys(frozenset(), frozenset())).empty
    empty = PEOPLE.iloc[:0]
    keys = candidate_keys(cohort_table([(2, "01/12345Z", "A", "B", "1980-01-01", "M", START)]))
    assert select_candidates(empty, keys).empty


def test_candidate_selection_keeps_everyone_the_rules_could_link() -> None:
    cohort = cohort_table(
        [
            (2, "01/12345Z", "Alan", "Turing", "1999-01-01", "M", START),  # PNC only
            (3, None, "Ada", "Lovelace", "1985-12-10", "F", START),
            (4, None, "Jon", "Smyth", "1975-07-07", "M", START),
        ]
    )
    everyone = link(cohort)
    selected = link(cohort, select_candidates(PEOPLE, candidate_keys(cohort)))
    pd.testing.assert_frame_equal(everyone.links, selected.links)
    pd.testing.assert_frame_equal(everyone.unlinked, selected.unlinked)


# -- the rules


def test_pnc_rule_links_when_sex_or_date_of_birth_agrees() -> None:
    cohort = cohort_table(
        [
            (2, "01/12345Z", "A", "Different", "1980-06-23", "F", START),  # DOB agrees
            (3, "1995/7654321a", "B", "Different", "1971-01-01", "F", START),  # sex agrees
        ]
    )
    result = link(cohort, rules=["pnc_id"])
    assert linked_pairs(result) == {2: (101, "pnc_id"), 3: (103, "pnc_id")}
    assert result.links["score"].tolist() == [1.0, 1.0]


def test_pnc_conflict_is_not_linked_and_is_explained() -> None:
    cohort = cohort_table([(2, "01/12345Z", "Alan", "Turing", "1981-01-01", "F", START)])
    result = link(cohort, rules=["pnc_id"])
    assert result.links.empty
    assert reasons(result) == {
        2: "pnc_id conflict: the national record with this pnc_id has a different sex and "
        "date of birth, so it was not used"
    }
    assert result.counts["unlinked"] == 1


def test_pnc_conflict_does_not_stop_later_rules() -> None:
    cohort = cohort_table([(2, "95/7654321A", "Ada", "Lovelace", "1985-12-10", "F", START)])
    result = link(cohort)  # the PNC is Grace Hopper's, with a different DOB but the same sex
    assert linked_pairs(result) == {2: (103, "pnc_id")}
    cohort = cohort_table([(2, "95/7654321A", "Alan", "Turing", "1980-06-23", "M", START)])
    result = link(cohort)  # PNC person differs in sex and DOB: name rule links Alan instead
    assert linked_pairs(result) == {2: (101, "exact_identity")}


def test_exact_identity_normalises_names() -> None:
    cohort = cohort_table(
        [
            (2, None, "siobhan", "o neil", "1990-05-05", "F", START),
            (3, None, "CATHERINE", "Zeta Jones", "1969-09-25", "F", START),
            (4, None, "Alan", "Turing", "1980-06-23", "F", START),  # wrong sex
            (5, None, "Alan", "Turing", "1980-06-24", "M", START),  # wrong DOB
        ]
    )
    result = link(cohort, rules=["exact_identity"])
    assert linked_pairs(result) == {2: (104, "exact_identity"), 3: (107, "exact_identity")}
    assert reasons(result) == {4: "no match by exact_identity", 5: "no match by exact_identity"}


def test_ambiguous_identity_is_not_linked() -> None:
    cohort = cohort_table([(2, None, "John", "Smith", "1975-07-07", "M", START)])
    result = link(cohort)
    assert result.links.empty
    reason = reasons(result)[2]
    assert reason.startswith(
        "ambiguous: 2 people in national records have the same name, date of birth and sex"
    )
    assert result.counts["ambiguous"] == 1
    assert result.counts["unlinked"] == 1


def test_typo_linked_by_fuzzy_but_not_by_exact() -> None:
    cohort = cohort_table([(2, None, "Allan", "Turnig", "1980-06-23", "M", START)])
    assert link(cohort, rules=["exact_identity"]).links.empty
    result = link(cohort, rules=["exact_identity", "fuzzy_identity"])
    assert linked_pairs(result) == {2: (101, "fuzzy_identity")}
    expected = (
        JaroWinkler.normalized_similarity("ALLAN", "ALAN")
        + JaroWinkler.normalized_similarity("TURNIG", "TURING")
    ) / 2
    assert result.links["score"].iloc[0] == pytest.approx(expected)
    assert 0.92 <= expected < 1


def test_fuzzy_tries_forename_and_surname_swapped() -> None:
    cohort = cohort_table([(2, None, "Lovelace", "Ada", "1985-12-10", "F", START)])
    result = link(cohort, rules=["fuzzy_identity"])
    assert linked_pairs(result) == {2: (102, "fuzzy_identity")}
    assert result.links["score"].iloc[0] == 1.0


def test_fuzzy_threshold_is_respected() -> None:
    cohort = cohort_table([(2, None, "Alun", "Tuling", "1980-06-23", "M", START)])
    score = (
        JaroWinkler.normalized_similarity("ALUN", "ALAN")
        + JaroWinkler.normalized_similarity("TULING", "TURING")
    ) / 2
    below = link(cohort, rules=["fuzzy_identity"], threshold=score - 1e-6)
    assert linked_pairs(below) == {2: (101, "fuzzy_identity")}
    above = link(cohort, rules=["fuzzy_identity"], threshold=score + 1e-6)
    assert above.links.empty
    assert reasons(above)[2] == (
        f"closest name similarity {score:.3f} is below fuzzy_threshold {score + 1e-6:g}"
    )
    assert above.fuzzy_threshold == pytest.approx(score + 1e-6)


@pytest.mark.parametrize(
    ("given", "first", "second"),
    [("Jon", "John", "Joan"), ("Jonh", "John", "Jon")],  # an exact tie; scores 0.008 apart
)
def test_fuzzy_near_ties_are_ambiguous(given: str, first: str, second: str) -> None:
    people = people_table(
        [
            (1, None, first, "Smith", "1975-07-07", "M"),
            (2, None, second, "Smith", "1975-07-07", "M"),
        ]
    )
    cohort = cohort_table([(2, None, given, "Smith", "1975-07-07", "M", START)])
    scores = [JaroWinkler.normalized_similarity(given.upper(), n.upper()) for n in (first, second)]
    assert abs(scores[0] - scores[1]) <= 0.01
    result = link(cohort, people, rules=["fuzzy_identity"], threshold=0.8)
    assert result.links.empty
    assert reasons(result)[2].startswith("ambiguous: 2 people with the same date of birth and sex")
    assert result.counts["ambiguous"] == 1


def test_fuzzy_links_a_clear_best_among_similar_names() -> None:
    people = people_table(
        [
            (1, None, "Mohamad", "Khan", "1975-07-07", "M"),
            (2, None, "Mohammed", "Khan", "1975-07-07", "M"),
        ]
    )
    cohort = cohort_table([(2, None, "Mohamed", "Khan", "1975-07-07", "M", START)])
    result = link(cohort, people, rules=["fuzzy_identity"], threshold=0.9)
    assert linked_pairs(result) == {2: (2, "fuzzy_identity")}
    assert result.links["score"].iloc[0] == pytest.approx((0.975 + 1) / 2)


def test_fuzzy_never_crosses_date_of_birth_or_sex() -> None:
    cohort = cohort_table([(2, None, "Alan", "Turing", "1980-06-22", "M", START)])
    result = link(cohort, rules=["fuzzy_identity"], threshold=0.5)
    assert result.links.empty
    assert reasons(result) == {2: "no match by fuzzy_identity"}


def test_rule_order_matters() -> None:
    # The PNC belongs to Ada's record (same sex), the name exactly matches Grace's.
    cohort = cohort_table([(2, "95/7654321A", "Grace", "Hopper", "1970-01-01", "F", START)])
    people = PEOPLE.assign(
        pnc_id=PEOPLE["pnc_id"]
        .where(PEOPLE["person_id"] != 102, "95/7654321A")
        .where(PEOPLE["person_id"] != 103, pd.NA)
    )
    assert linked_pairs(link(cohort, people, rules=["pnc_id", "exact_identity"])) == {
        2: (102, "pnc_id")
    }
    assert linked_pairs(link(cohort, people, rules=["exact_identity", "pnc_id"])) == {
        2: (103, "exact_identity")
    }


def test_a_row_linked_by_an_earlier_rule_is_not_relinked() -> None:
    cohort = cohort_table([(2, "01/12345Z", "Alan", "Turing", "1980-06-23", "M", START)])
    result = link(cohort)
    assert linked_pairs(result) == {2: (101, "pnc_id")}
    assert result.counts == {
        "pnc_id": 1,
        "exact_identity": 0,
        "fuzzy_identity": 0,
        "unlinked": 0,
        "ambiguous": 0,
        "duplicate_person": 0,
    }


def test_two_rows_for_one_person_keep_the_earliest_start() -> None:
    cohort = cohort_table(
        [
            (2, None, "Alan", "Turing", "1980-06-23", "M", "2017-05-01"),
            (3, "01/12345Z", "A.", "Turing", "1980-06-23", "M", "2017-02-01"),
            (4, None, "Alan", "Turring", "1980-06-23", "M", "2017-02-01"),
            (5, None, "Ada", "Lovelace", "1985-12-10", "F", "2017-01-01"),
        ]
    )
    result = link(cohort)
    assert linked_pairs(result) == {3: (101, "pnc_id"), 5: (102, "exact_identity")}
    assert reasons(result) == {2: "same person as row 3", 4: "same person as row 3"}
    assert result.counts["duplicate_person"] == 2
    assert result.counts["unlinked"] == 2


def test_duplicate_person_ties_keep_the_lowest_row() -> None:
    cohort = cohort_table(
        [
            (7, None, "Alan", "Turing", "1980-06-23", "M", START),
            (3, None, "ALAN", "TURING", "1980-06-23", "M", START),
        ]
    )
    result = link(cohort)
    assert linked_pairs(result) == {3: (101, "exact_identity")}
    assert reasons(result) == {7: "same person as row 3"}


# -- the whole result


def mixed_cohort() -> pd.DataFrame:
    return cohort_table(
        [
            (2, "01/12345Z", "Alan", "Turing", "1980-06-23", "M", START),
            (3, None, "Ada", "Lovelace", "1985-12-10", "F", START),
            (4, None, "John", "Smith", "1975-07-07", "M", START),
            (5, None, "Catherin", "Zeta-Jones", "1969-09-25", "F", START),
            (6, "95/7654321A", "Someone", "Else", "1999-09-09", "M", START),
            (7, None, "Nobody", "Known", "2001-01-01", "F", START),
            (8, None, "Siobhan", "O'Neil", "1990-05-05", "F", "2016-01-01"),
            (9, None, "Siobhán", "ONeil", "1990-05-05", "F", "2018-01-01"),
            (10, None, "---", "Hopper", "1970-01-01", "F", START),
        ]
    )


def test_result_tables_counts_and_parameters() -> None:
    result = link(mixed_cohort())
    assert linked_pairs(result) == {
        2: (101, "pnc_id"),
        3: (102, "exact_identity"),
        5: (107, "fuzzy_identity"),
        8: (104, "exact_identity"),
    }
    assert set(reasons(result)) == {4, 6, 7, 9, 10}
    assert reasons(result)[9] == "same person as row 8"
    assert reasons(result)[7] == "no match by pnc_id, exact_identity, fuzzy_identity"
    assert "no letters" in reasons(result)[10]
    assert result.counts == {
        "pnc_id": 1,
        "exact_identity": 2,
        "fuzzy_identity": 1,
        "unlinked": 5,
        "ambiguous": 1,
        "duplicate_person": 1,
    }
    assert list(result.links.columns) == ["row_number", "person_id", "rule", "score"]
    assert str(result.links["person_id"].dtype) == "int64"
    assert list(result.unlinked.columns) == ["row_number", "reason"]
    assert result.rules == tuple(ALL_RULES)
    assert result.fuzzy_threshold == 0.92


def test_unlinked_reasons_never_contain_names_or_dates_of_birth() -> None:
    cohort = mixed_cohort()
    text = " ".join(link(cohort).unlinked["reason"])
    for value in pd.concat([cohort["forename"], cohort["surname"]]):
        if any(ch.isalpha() for ch in value):
            assert value.upper() not in text.upper()
    for born in cohort["date_of_birth"]:
        assert born.strftime("%Y-%m-%d") not in text
        assert str(born.year) not in text


def test_linkage_is_deterministic_and_independent_of_row_order() -> None:
    cohort = mixed_cohort()
    expected = link(cohort)
    for seed in (1, 2, 3):
        shuffled_cohort = cohort.sample(frac=1, random_state=seed)
        shuffled_people = PEOPLE.sample(frac=1, random_state=seed)
        again = link(shuffled_cohort, shuffled_people)
        pd.testing.assert_frame_equal(expected.links, again.links)
        pd.testing.assert_frame_equal(expected.unlinked, again.unlinked)
        assert expected.counts == again.counts
    assert expected.links["row_number"].is_monotonic_increasing
    assert expected.unlinked["row_number"].is_monotonic_increasing


def test_cohort_without_pnc_column_and_empty_candidates() -> None:
    cohort = mixed_cohort().drop(columns=["pnc_id"])
    assert candidate_keys(cohort).pnc_ids == frozenset()
    result = link(cohort, PEOPLE.iloc[:0])
    assert result.links.empty
    assert result.counts["unlinked"] == len(cohort)


# -- the registry and parameters


def test_unknown_rule_lists_the_choices() -> None:
    with pytest.raises(JdlUserError) as caught:
        link(mixed_cohort(), rules=["pnc_id", "soundex"])
    message = str(caught.value)
    assert "linkage.rules" in message and "'soundex'" in message
    assert "pnc_id, exact_identity, fuzzy_identity" in message


def test_repeated_rule_and_bad_threshold_are_refused() -> None:
    with pytest.raises(JdlUserError, match="once"):
        link(mixed_cohort(), rules=["pnc_id", "pnc_id"])
    with pytest.raises(JdlUserError, match="fuzzy_threshold"):
        link(mixed_cohort(), threshold=1.5)


def test_registering_a_duplicate_rule_name_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_rule("pnc_id")(LINKAGE_RULES["pnc_id"])
