"""The report of a study with a conditional param: a trial shows only the params it had."""

from __future__ import annotations

import optuna

from hpo.report.html.data import StudyData
from hpo.report.html.figures import parallel_coordinates, param_importances, top_params_slice
from hpo.search.space import suggest
from hpo.spec import ParamSpec

SPACE = (
    ParamSpec("optim", "categorical", choices=("adamw_torch", "sgd")),
    ParamSpec("adam_beta2", "float", 0.95, 0.999, when=(("optim", ("adamw_torch",)),)),
    ParamSpec("learning_rate", "float", 1e-4, 1e-2, log=True),
)


def test_plots_draw_a_missing_conditional_param_as_absent(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=storage, study_name="cond", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    for _ in range(12):
        trial = study.ask()
        params = suggest(trial, SPACE)
        study.tell(trial, params["learning_rate"] * 100 + params.get("adam_beta2", 0.0))
    trials = optuna.load_study(study_name="cond", storage=storage).get_trials()
    data = StudyData("cond", storage, ["minimize"], ["eval_loss"], trials)

    figure = parallel_coordinates(data).figure.to_dict()
    dimensions = {d["label"]: d for d in figure["data"][0]["dimensions"]}
    beta2 = dimensions["adam_beta2"]
    absent = beta2["ticktext"].index("(absent)")
    for trial, position in zip(trials, beta2["values"], strict=True):
        assert (position == absent) == ("adam_beta2" not in trial.params)
        if "adam_beta2" in trial.params:
            assert beta2["ticktext"][position] == repr(trial.params["adam_beta2"])

    scores, _ = param_importances(data)  # optuna's evaluator takes the conditional space
    assert "learning_rate" in scores
    sliced = top_params_slice(data, ["adam_beta2"])
    if sliced is not None:  # only the trials that had the param are points
        x = sliced.figure.to_dict()["data"][0]["x"]
        assert len(x) == sum("adam_beta2" in t.params for t in trials)
