"""Comparisons over several problems: runs per data seed, the spread over problems, published entries by label."""

import pytest

from qnnlab.config import BreastCancerData
from qnnlab.data import get_dataset
from qnnlab.experiments.compare import aggregate, markdown_table, table_cells
from qnnlab.experiments.presets import preset_runs
from qnnlab.experiments.published import published
from qnnlab.train.loop import RunResult


def _run(label: str, problem: int, seed: int, gap: float) -> RunResult:
    cfg = {"seed": seed, "data": {"name": "breast_cancer", "seed": problem}}
    return RunResult(label, cfg, {"rel_gap": gap})


def test_spread_over_problems_is_the_std_of_the_per_problem_means() -> None:
    # problem 0: gaps 0.1, 0.3 (mean 0.2); problem 1: 0.6, 0.6 (mean 0.6); problem 2: 0.1, 0.1 (mean 0.1)
    gaps = {(0, 0): 0.1, (0, 1): 0.3, (1, 0): 0.6, (1, 1): 0.6, (2, 0): 0.1, (2, 1): 0.1}
    (row,) = aggregate([_run("a", p, s, g) for (p, s), g in gaps.items()])
    assert row.n == 6 and row.problems == 3
    assert row.stats["rel_gap"][0] == pytest.approx(1.8 / 6)
    # std of (0.2, 0.6, 0.1): mean 0.3, squares 0.01 + 0.09 + 0.04 = 0.14, / 2 = 0.07
    assert row.spread["rel_gap"] == pytest.approx(0.07**0.5)
    header, cells = table_cells([row])
    assert header[:4] == ["method", "problems × seeds", "gap to binary opt. %", "gap spread over problems %"]
    assert cells[0][1] == "3 × 2" and cells[0][3] == f"{100 * 0.07**0.5:.3f}"


def test_one_problem_has_no_spread_column() -> None:
    rows = aggregate([_run("a", 0, s, 0.1 * s) for s in range(3)])
    assert rows[0].spread == {} and "spread" not in markdown_table(rows)


def test_preset_runs_over_problems() -> None:
    runs = preset_runs("breast-cancer", 2, problems=3)
    labels = {c.label for c in runs}
    assert len(runs) == 3 * 2 * len(labels)
    assert sorted({(c.data.seed, c.seed) for c in runs}) == [(p, s) for p in range(3) for s in range(2)]
    assert {c.data.seed for c in preset_runs("logistic", 1)} == {0}  # no problems asked: the preset's own
    with pytest.raises(ValueError, match="Invalid problems: 0"):
        preset_runs("logistic", 1, problems=0)


def test_breast_cancer_split_and_standardization() -> None:
    data = get_dataset(BreastCancerData(seed=1))
    assert data.x_train.shape == (455, 10) and data.x_test.shape == (114, 10) and data.task == "binary"
    assert data.x_train.mean(0).abs().max() < 1e-5 and (data.x_train.std(0, unbiased=False) - 1).abs().max() < 1e-4
    # stratified: 212 malignant (label 0) of 569 keep their share in the test split
    assert int((data.y_test == 0).sum()) == round(114 * 212 / 569)
    assert not data.x_train.equal(get_dataset(BreastCancerData(seed=2)).x_train)  # a new seed, a new problem


def test_published_numbers_match_rows_and_show_their_setting() -> None:
    labels = {c.label for c in preset_runs("two-moons", 1)}
    assert "adaste" in labels and published("two-moons", "adaste") is not None
    assert published("two-moons", "adaste*") == published("two-moons", "adaste")  # an untuned row: its method's entry
    assert "proxquant" in {c.label for c in preset_runs("cifar10-resnet20", 1)}
    cell = published("cifar10-resnet20", "proxquant").cell()
    assert "pretrained full-precision start" in cell and "300 epochs" in cell
    assert "squared hinge loss" in published("mnist-mlp", "binaryconnect").cell()
