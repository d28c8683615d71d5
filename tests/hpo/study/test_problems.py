"""hpo.study.problems: problem lines with their key path, did-you-mean hints, one-of rules."""

from __future__ import annotations

from helpers.study_files import DELETE, problems_of, the_problem

from hpo.study.problems import Problems


def test_unknown_top_level_key_with_did_you_mean(tmp_path):
    problem = the_problem(tmp_path, {"sampeler": {"name": "tpe"}}, "sampeler")
    assert "unknown key" in problem and "did you mean 'sampler'?" in problem


def test_exactly_one_model_source_and_one_data_source(tmp_path):
    problems = problems_of(
        tmp_path,
        {"model": {"pretrained": "gpt2"}, "data": {"hub": "wikitext"}},
    )
    assert any(p.startswith("model: found config and pretrained") for p in problems)
    assert any(p.startswith("data: found corpus and hub") for p in problems)
    problems = problems_of(tmp_path, {"data": {"corpus": DELETE}})
    assert any(p.startswith("data: found none; expected exactly one of files") for p in problems)


def test_a_long_list_of_keys_stays_on_one_screen_line():
    keys = [f"key_number_{i}" for i in range(30)]
    problems = Problems()
    problems.unknown_keys({"key_numbr_3": 1}, keys, "")
    (line,) = problems.lines
    assert len(line) < 250
    assert "key_number_0, key_number_1" in line and "more (see docs/STUDY_FILE.md)" in line
    assert "did you mean 'key_number_3'?" in line
