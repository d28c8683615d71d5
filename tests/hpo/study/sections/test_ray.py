"""hpo.study.sections.ray: the ray section, with the backend's scheduler and search."""

from __future__ import annotations

from helpers.study_files import problems_of


def test_ray_scheduler_problems(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "backend": "ray",
            "scheduler": {"name": "asha", "grace_periods": 2},
            "sampler": {"name": "cmaes"},
            "ray": {"resources_per_trial": {"cpu": -1, "tpu": 1}, "adress": "auto"},
        },
    )
    assert any(
        p.startswith("scheduler.grace_periods:") and "did you mean 'grace_period'?" in p
        for p in problems
    )
    assert any(
        p.startswith("sampler.name: found 'cmaes'") and "one of random, tpe" in p for p in problems
    )
    assert any(p.startswith("ray.resources_per_trial.cpu: found -1") for p in problems)
    assert any(p.startswith("ray.resources_per_trial.tpu:") for p in problems)
    assert any(p.startswith("ray.adress:") and "did you mean 'address'?" in p for p in problems)
