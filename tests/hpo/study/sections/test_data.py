"""hpo.study.sections.data: one data source, its files and values, and the model fitting it."""

from __future__ import annotations

from helpers.study_files import DELETE, problems_of, the_problem, write_study

from hpo.study import load


def test_data_files_resolve_against_the_current_directory(tmp_path):
    (tmp_path / "train.txt").write_text("hello world\n" * 10)
    (tmp_path / "valid.txt").write_text("hello again\n")
    spec = load(
        write_study(
            tmp_path,
            {"data": {"corpus": DELETE, "files": "train.txt", "eval_files": ["valid.txt"]}},
        )
    )
    assert spec.data.files == (str(tmp_path / "train.txt"),)
    assert spec.data.eval_files == (str(tmp_path / "valid.txt"),)


def test_eval_files_need_files(tmp_path):
    (tmp_path / "valid.txt").write_text("x\n")
    problem = the_problem(tmp_path, {"data": {"eval_files": ["valid.txt"]}}, "data.eval_files")
    assert "without data.files" in problem


def test_model_must_fit_the_data(tmp_path):
    problems = problems_of(
        tmp_path,
        {"model": {"config": {"vocab_size": 100}}, "data": {"block_size": 128}},
    )
    assert any(
        p.startswith("model.config.vocab_size: found 100") and ">= 256" in p for p in problems
    )
    assert any(p.startswith("data.block_size: found 128") and "64 positions" in p for p in problems)


def test_data_values(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "data": {
                "corpus": "wiki",
                "eval_fraction": 1.5,
                "block_size": 1,
                "max_eval_samples": 0,
                "tokeniser": "bytes",
            }
        },
    )
    for path, text in [
        ("data.corpus", "one of pydoc-topics"),
        ("data.eval_fraction", "between 0 and 1"),
        ("data.block_size", "an integer >= 2"),
        ("data.max_eval_samples", "an integer >= 1"),
        ("data.tokeniser", "did you mean 'tokenizer'?"),
    ]:
        assert any(p.startswith(f"{path}:") and text in p for p in problems), (path, problems)
