"""hpo.study.yaml_file: the study file's YAML, read safely (line numbers, duplicate keys, 1e-4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.study_files import write_study

from hpo.errors import StudyFileError
from hpo.study import load


def test_floats_written_without_a_dot_are_numbers(tmp_path):
    # YAML 1.1 reads `1e-4` as text; a study file reads it as the number a user meant.
    path = tmp_path / "study.yaml"
    write_study(tmp_path)
    path.write_text(path.read_text().replace("0.0001", "1e-4").replace("0.01", "1E-2"))
    assert "1e-4" in path.read_text()
    spec = load(path)
    assert spec.space[0].low == 1e-4 and spec.space[0].high == 1e-2


def the_only_problem(path: Path, text: str) -> str:
    """The one problem `load` reports for a study file reading `text` (and fail if not one)."""
    path.write_text(text)
    with pytest.raises(StudyFileError) as caught:
        load(path)
    [problem] = caught.value.problems
    return problem


def test_yaml_syntax_error_names_the_line(tmp_path):
    problem = the_only_problem(
        tmp_path / "study.yaml",
        "name: unit\nspace:\n  learning_rate: {type: float, low: 1\n  x: 2\n",
    )
    assert problem.startswith("line 4") and "YAML syntax error" in problem


def test_duplicate_key_is_an_error(tmp_path):
    problem = the_only_problem(tmp_path / "study.yaml", "name: a\nworkers: 1\nworkers: 2\n")
    assert "duplicate key 'workers' (first given at line 2)" in problem and "line 3" in problem


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(StudyFileError, match="no such file"):
        load(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(StudyFileError, match="expected a mapping"):
        load(tmp_path / "list.yaml")


def test_hostile_files_are_refused_before_they_are_built(tmp_path):
    import os
    import tracemalloc

    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)]
    cases = {
        "bomb.yaml": ("name: x\n" + "\n".join(lines) + "\n", "aliases (*name) are expanded"),
        "deep.yaml": ("name: x\nw: " + "[" * 50_000 + "]" * 50_000, "nested more than 100"),
        "big.yaml": ("name: x\n" + "#" * 1_000_001, "more than a study file's limit"),
    }
    for name, (content, says) in cases.items():
        (tmp_path / name).write_text(content)
        tracemalloc.start()
        with pytest.raises(StudyFileError) as caught:
            load(tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert says in str(caught.value) and len(str(caught.value)) < 400
        assert peak < 50 * 2**20, (name, peak)  # the bomb expands to 387 million strings
    os.mkfifo(tmp_path / "fifo.yaml")  # opening it would block until a writer comes
    for path in (tmp_path / "fifo.yaml", "/dev/zero", tmp_path):
        with pytest.raises(StudyFileError, match="not a regular file|a directory"):
            load(path)


def test_a_long_value_is_shown_short_without_rendering_it_whole():
    from hpo.study.problems import show

    nested: list = ["lol"] * 9
    for _ in range(9):
        nested = [nested] * 9  # 387 million strings if rendered
    assert len(show(nested)) == 80 and show(nested).startswith("[[[[")
    assert show(10**5000) == "<an integer of about 5001 digits>"
