"""hpo.study.references: local paths, hub ids and user factories a study points at."""

from __future__ import annotations

from helpers.study_files import DELETE, problems_of, write_study

from hpo.study import load


def test_missing_local_paths(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "model": {"config": DELETE, "pretrained": "./no-such-model"},
            "data": {
                "corpus": DELETE,
                "files": ["train.txt", "notes.pdf"],
                "tokenizer": "/no/tokenizer",
            },
        },
    )
    assert any(
        p.startswith("model.pretrained:") and "no such file or directory" in p for p in problems
    )
    assert any(p.startswith("data.files[0]:") and "does not exist" in p for p in problems)
    assert any(p.startswith("data.files[1]:") and ".txt, .jsonl, .csv" in p for p in problems)
    assert any(p.startswith("data.tokenizer:") and "no such file" in p for p in problems)


def test_factories_are_imported_and_checked(tmp_path):
    (tmp_path / "my_factories.py").write_text("def make_model():\n    return None\n")
    study = write_study(
        tmp_path,
        {
            "model": {"config": DELETE, "factory": "my_factories:make_model"},
            "space": {"model.n_layer": DELETE},
        },
        name="factory.yaml",
    )
    load(study)
    assert not (tmp_path / "__pycache__").exists()  # validation writes nothing, not even bytecode
    spec = load(
        write_study(
            tmp_path,
            {
                "model": {"config": DELETE, "factory": "my_factories:make_model"},
                "space": {"model.n_layer": DELETE},
            },
        )
    )
    assert spec.model.factory == "my_factories:make_model"
    problems = problems_of(
        tmp_path, {"model": {"config": DELETE, "factory": "my_factories:make_modle"}}
    )
    assert any(p.startswith("model.factory:") and "make_modle" in p for p in problems)
    problems = problems_of(
        tmp_path, {"model": {"config": DELETE, "factory": "no_such_module_here:f"}}
    )
    assert any(p.startswith("model.factory:") and "no_such_module_here" in p for p in problems)
