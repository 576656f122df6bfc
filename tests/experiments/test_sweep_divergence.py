"""A sweep goes on past a trial that diverges: it is finished, and scores as the worst."""

from pathlib import Path

from qnnlab.experiments.sweep import SweepSpec, sweep


def test_a_diverged_trial_scores_as_the_worst_and_is_never_picked(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate(
        {
            "name": "wild",
            "preset": "logistic",
            "set": {"epochs": 2, "data.n_train": 200, "data.n_test": 100},
            "metric": "val_loss",
            "seeds": 1,
            "space": {"ste": {"method.lr": [1e300, 0.1]}},
        }
    )
    record, final = sweep(spec, tmp_path)
    (method,) = record.methods
    assert [t.score for t in method.trials] == [None, method.trials[1].score] and method.best == 1
    assert [r["status"] for r in final] == ["done"]
