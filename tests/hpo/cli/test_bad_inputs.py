"""The bad-input corpus: every case through the real `hpo` command, each checked the same way.

For each case:
- the exit status: 2 for a bad study file or usage, 1 for a service that cannot be reached;
- no traceback, and output that fits one screen: at most MAX_LINES lines of at most MAX_COLUMNS
  characters (problem lines name a key path, a value shortened to 80 characters and the fix);
- nothing created: the case's folder holds exactly what the case put there (no database, no
  runs/ folder, no exported file);
- the password of a storage URL (PASSWORD, present in the cases that give a URL) never printed;
- bounded memory and time: the command runs in a child process whose address space may grow by
  at most EXTRA_MEMORY_MB over what the preloaded interpreter holds, and which is killed after
  KILL_AFTER_S (a generous bound that only a hang reaches; no wall-clock time is asserted).

Cases are (id, what the folder holds, argv, expected exit, a text the output must contain).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.study_files import DELETE, write_study

MAX_LINES = 40
MAX_COLUMNS = 250
EXTRA_MEMORY_MB = 1024
KILL_AFTER_S = 300
PASSWORD = "hunter2-Secret"
UNREACHABLE_PG = f"postgresql://alice:{PASSWORD}@127.0.0.1:9/hpo"


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path], Any]
    argv: tuple[str, ...]
    code: int
    says: str


def study(
    changes: dict[str, Any] | None = None, name: str = "study.yaml", extra: str = ""
) -> Callable[[Path], Any]:
    """base_study() with `changes` merged in, and `extra` YAML appended."""

    def setup(folder: Path) -> None:
        path = write_study(folder, changes, name=name)
        path.write_text(path.read_text() + extra)

    return setup


def text(content: str | bytes, name: str = "study.yaml") -> Callable[[Path], Any]:
    def setup(folder: Path) -> None:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return setup


def alias_bomb() -> str:
    """The 'billion laughs': 9 levels of 9 aliases, about 400 bytes, 9**9 strings expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "name: bomb\n" + "\n".join(lines) + "\nworkers: *l9\n"


def fifo(folder: Path) -> None:
    os.mkfifo(folder / "study.yaml")


def folder_as_study(folder: Path) -> None:
    (folder / "study.yaml").mkdir()


def a_file_at(relative: str, changes: dict[str, Any]) -> Callable[[Path], Any]:
    def setup(folder: Path) -> None:
        (folder / relative).write_text("not a folder\n")
        write_study(folder, changes)

    return setup


def exported_study(folder: Path) -> None:
    """A study file and its storage with one finished trial, so `hpo export` reaches writing."""
    import optuna
    from optuna.trial import TrialState, create_trial

    write_study(folder, {"storage": "sqlite:///unit.db"})
    storage = f"sqlite:///{folder / 'unit.db'}"
    created = optuna.create_study(study_name="unit", storage=storage)
    created.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=1.0,
            params={"learning_rate": 1e-3},
            distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2)},
        )
    )


def space(param: dict[str, Any], name: str = "warmup_steps") -> dict[str, Any]:
    return {"space": {name: param}}


RUN = ("run", "study.yaml")
CASES = [
    # --- the file itself ---------------------------------------------------------------------
    Case("missing-file", lambda f: None, RUN, 2, "no such file"),
    Case("directory", folder_as_study, RUN, 2, "a directory"),
    Case("dev-zero", lambda f: None, ("run", "/dev/zero"), 2, "not a regular file"),
    Case("fifo", fifo, RUN, 2, "not a regular file"),
    Case("over-1mb", text("name: big\n" + "# padding\n" * 150_000), RUN, 2, "1,000,000"),
    Case("alias-bomb", text(alias_bomb()), RUN, 2, "aliases"),
    Case("deep-list", text("name: deep\nworkers: " + "[" * 50_000 + "]" * 50_000), RUN, 2, "deep"),
    Case(
        "deep-mapping",
        text("name: deep\nworkers: " + "{a: " * 50_000 + "1" + "}" * 50_000),
        RUN,
        2,
        "deep",
    ),
    Case("5000-digit-int", text("name: x\nworkers: " + "9" * 5000 + "\n"), RUN, 2, "4300"),
    Case("not-utf8", text(b"name: \xff\xfe\x00x\n"), RUN, 2, "not UTF-8"),
    Case("empty", text(""), RUN, 2, "empty"),
    Case("top-level-list", text("- a\n- b\n"), RUN, 2, "expected a mapping"),
    Case("yaml-syntax", text("name: x\nspace: [1, 2\n"), RUN, 2, "YAML syntax error"),
    Case("duplicate-key", text("name: a\nworkers: 1\nworkers: 2\n"), RUN, 2, "duplicate key"),
    Case("unknown-top-key", study({"wrokers": 2}), RUN, 2, "did you mean 'workers'"),
    Case("bad-name", study({"name": "a/b"}), RUN, 2, "name"),
    # --- workers and budget ------------------------------------------------------------------
    Case("workers-10000", study({"workers": 10_000}), RUN, 2, "expected at most"),
    Case("workers-1e30-int", study({"workers": 10**30}), RUN, 2, "expected at most"),
    Case("workers-1e30-float", study({"workers": 1e30}), RUN, 2, "workers: found 1e+30"),
    Case("workers-0", study({"workers": 0}), RUN, 2, "workers: found 0"),
    Case("workers-text", study({"workers": "two"}), RUN, 2, "workers: found 'two'"),
    Case("cli-workers-huge", study(), (*RUN, "--workers", "100000"), 2, "--workers: found"),
    Case("cli-n-trials-0", study(), (*RUN, "--n-trials", "0"), 2, "--n-trials: found 0"),
    Case("cli-n-trials-text", study(), (*RUN, "--n-trials", "many"), 2, "invalid int value"),
    Case("timeout-forever", study({"budget": {"timeout": "forever"}}), RUN, 2, "budget.timeout"),
    Case(
        "max-failed-negative",
        study({"budget": {"max_failed_trials": -1}}),
        RUN,
        2,
        "budget.max_failed_trials",
    ),
    Case("direction-up", study({"objective": {"direction": "up"}}), RUN, 2, "objective.direction"),
    Case("backend-unknown", study({"backend": "tensorflow"}), RUN, 2, "backend: found"),
    Case("keep-unknown", study({"keep": "some"}), RUN, 2, "keep: found"),
    # --- model ---------------------------------------------------------------------------------
    Case("model-missing", study({"model": DELETE}), RUN, 2, "model: missing"),
    Case(
        "model-type-unknown",
        study({"model": {"config": {"model_type": "gpt7"}}}),
        RUN,
        2,
        "model.config.model_type",
    ),
    Case(
        "model-two-sources",
        study({"model": {"factory": "os:getcwd"}}),
        RUN,
        2,
        "expected exactly one of",
    ),
    Case(
        "trust-remote-code-text",
        study({"model": {"trust_remote_code": "yes"}}),
        RUN,
        2,
        "model.trust_remote_code: found 'yes'",
    ),
    # --- space ---------------------------------------------------------------------------------
    Case(
        "space-trust-remote-code",
        study(space({"type": "categorical", "choices": [True]}, "model.trust_remote_code")),
        RUN,
        2,
        "never searched",
    ),
    Case(
        "space-push-to-hub",
        study(space({"type": "categorical", "choices": [True, False]}, "push_to_hub")),
        RUN,
        2,
        "never searched",
    ),
    Case(
        "space-output-dir",
        study(space({"type": "categorical", "choices": ["/tmp/a", "/tmp/b"]}, "output_dir")),
        RUN,
        2,
        "never searched",
    ),
    Case("space-empty", study({"space": DELETE}, extra="space: {}\n"), RUN, 2, "space: empty"),
    Case(
        "low-above-high",
        study(space({"type": "int", "low": 9, "high": 1})),
        RUN,
        2,
        "low 9 > high 1",
    ),
    Case(
        "low-equals-high",
        study(space({"type": "int", "low": 5, "high": 5})),
        RUN,
        2,
        "belongs",
    ),
    Case(
        "step-beyond-range",
        study(space({"type": "int", "low": 0, "high": 5, "step": 10})),
        RUN,
        2,
        "exceeds the range",
    ),
    Case(
        "log-from-zero",
        study(space({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "weight_decay")),
        RUN,
        2,
        "log scale",
    ),
    Case(
        "choices-empty",
        study(space({"type": "categorical", "choices": []}, "per_device_train_batch_size")),
        RUN,
        2,
        "non-empty list",
    ),
    Case(
        "param-type-unknown",
        study(space({"type": "integer", "low": 0, "high": 5})),
        RUN,
        2,
        "did you mean 'int'",
    ),
    # --- training ------------------------------------------------------------------------------
    Case("training-typo", study({"training": {"max_stepz": 10}}), RUN, 2, "did you mean"),
    Case(
        "eval-steps-beyond-max",
        study({"training": {"eval_steps": 100}}),
        RUN,
        2,
        "eval_steps: 100 > max_steps 60",
    ),
    Case(
        "output-dir-is-a-file",
        a_file_at("taken", {"training": {"output_dir": "taken"}}),
        RUN,
        2,
        "is a file",
    ),
    Case(
        "output-dir-under-a-file",
        a_file_at("taken", {"training": {"output_dir": "taken/runs"}}),
        RUN,
        2,
        "a file",
    ),
    Case(
        "sqlite-under-a-file",
        a_file_at("taken", {"storage": "sqlite:///taken/study.db"}),
        RUN,
        2,
        "is a file",
    ),
    # --- sampler, pruner, scheduler -----------------------------------------------------------
    Case("sampler-typo", study({"sampler": {"name": "tpee"}}), RUN, 2, "did you mean 'tpe'"),
    Case(
        "startup-negative",
        study({"sampler": {"name": "tpe", "n_startup_trials": -3}}),
        RUN,
        2,
        "sampler.n_startup_trials: found -3",
    ),
    Case(
        "pruner-startup-negative",
        study({"pruner": {"name": "median", "n_startup_trials": -1}}),
        RUN,
        2,
        "pruner.n_startup_trials: found -1",
    ),
    Case(
        "pruner-option-unknown",
        study({"pruner": {"name": "median", "warmup": 3}}),
        RUN,
        2,
        "not an option of pruner median",
    ),
    Case(
        "min-resource-beyond-max-steps",
        study({"pruner": {"name": "hyperband", "min_resource": 100}}),
        RUN,
        2,
        "min_resource",
    ),
    Case(
        "asha-grace-beyond-max-t",
        study({"backend": "ray", "scheduler": {"name": "asha", "grace_period": 50, "max_t": 40}}),
        RUN,
        2,
        "grace_period",
    ),
    Case(
        "asha-grace-beyond-max-steps",
        study({"backend": "ray", "scheduler": {"name": "asha", "grace_period": 100}}),
        RUN,
        2,
        "grace_period",
    ),
    # --- data ------------------------------------------------------------------------------------
    Case(
        "data-file-missing",
        study({"data": {"corpus": DELETE, "files": ["absent.txt"]}}),
        RUN,
        2,
        "absent.txt",
    ),
    Case("block-size-0", study({"data": {"block_size": 0}}), RUN, 2, "data.block_size"),
    # --- storage -----------------------------------------------------------------------------
    Case(
        "storage-no-database-name",
        study({"storage": f"postgresql://alice:{PASSWORD}@db.invalid"}),
        RUN,
        2,
        "alice:***@db.invalid",
    ),
    Case(
        "storage-dialect",
        study({"storage": f"oracle://alice:{PASSWORD}@db/x"}),
        RUN,
        2,
        "not supported",
    ),
    Case("storage-not-a-url", study({"storage": "runs/study.db"}), RUN, 2, "not a URL"),
    Case(
        "pg-unreachable-status",
        study(),
        ("status", "study.yaml", "--storage", UNREACHABLE_PG),
        1,
        "alice:***@127.0.0.1:9",
    ),
    Case(
        "pg-unreachable-run",
        study(),
        (*RUN, "--storage", UNREACHABLE_PG),
        1,
        "alice:***@127.0.0.1:9",
    ),
    Case(
        "pg-unreachable-dashboard",
        study(),
        ("dashboard", "study.yaml", "--storage", UNREACHABLE_PG, "--port", "0"),
        1,
        "alice:***@127.0.0.1:9",
    ),
    # --- other commands ----------------------------------------------------------------------
    Case("no-command", lambda f: None, (), 2, "usage: hpo"),
    Case("unknown-command", lambda f: None, ("fly",), 2, "invalid choice"),
    Case("run-without-study", lambda f: None, ("run",), 2, "the following arguments"),
    Case(
        "dashboard-port-99999", study(), ("dashboard", "study.yaml", "--port", "99999"), 2, "65535"
    ),
    Case("dashboard-port-text", study(), ("dashboard", "study.yaml", "--port", "http"), 2, "65535"),
    Case(
        "export-under-a-file",
        exported_study,
        ("export", "study.yaml", "-o", "/etc/passwd/best.yaml"),
        2,
        "cannot write",
    ),
    Case(
        "export-into-proc",
        exported_study,
        ("export", "study.yaml", "-o", "/proc/best.yaml"),
        2,
        "cannot write",
    ),
    Case("train-a-study-file", study(), ("train", "study.yaml"), 2, "not an exported config"),
    Case("train-missing", lambda f: None, ("train", "best.yaml"), 2, "no such file"),
    Case("train-dev-zero", lambda f: None, ("train", "/dev/zero"), 2, "not a regular file"),
    Case("train-alias-bomb", text(alias_bomb(), "best.yaml"), ("train", "best.yaml"), 2, "aliases"),
    Case("train-broken-json", text("{", "best.json"), ("train", "best.json"), 2, "cannot parse"),
]


def test_the_corpus_has_at_least_60_distinct_cases():
    assert len({case.id for case in CASES}) == len(CASES) >= 60


@pytest.fixture
def runner(hpo_cli):
    return hpo_cli  # the session's preloaded runner (tests/conftest.py)


def snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, runner, tmp_path):
    folder = tmp_path / "case"
    folder.mkdir()
    case.setup(folder)
    before = snapshot(folder)
    result = runner.run(
        list(case.argv), folder, extra_memory_mb=EXTRA_MEMORY_MB, timeout_s=KILL_AFTER_S
    )
    output = result.output
    assert not result.timed_out, f"killed after {KILL_AFTER_S} s: {output[-2000:]}"
    assert result.returncode == case.code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert case.says in output, output[-3000:]
    lines = output.splitlines()
    assert len(lines) <= MAX_LINES, output
    assert max((len(line) for line in lines), default=0) <= MAX_COLUMNS, output
    assert PASSWORD not in output
    assert snapshot(folder) == before  # no database, no runs/ folder, no exported file
