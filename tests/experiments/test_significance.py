"""The sign test by hand, and the tables' bold: the best mean, only where it beats the runner-up significantly."""

import math
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qnnlab.experiments.compare import (
    BOLD_NOTE,
    UNTUNED_NOTE,
    Row,
    aggregate,
    best_tests,
    markdown_table,
    pairwise_tests,
    run_key,
    table_cells,
)
from qnnlab.experiments.significance import PairedTest, sign_test


def test_sign_test_by_hand() -> None:
    a = {(0, s): 0.1 for s in range(5)}
    b = {(0, s): 0.2 for s in range(5)}
    # 5 wins of 5: p = 2⁻⁵; the other way round p = 1
    assert sign_test(a, b, "min") == PairedTest(5, 0, 0, 1 / 32)
    assert sign_test(b, a, "min") == PairedTest(0, 0, 5, 1.0)
    assert sign_test(b, a, "max").p == 1 / 32 and sign_test(a, b, "min").significant
    # 4 wins, 1 loss: p = (C(5,4) + C(5,5))/2⁵ = 6/32; a tie (within 1e-9) and an unpaired key are dropped
    c = {**b, (0, 4): 0.05, (0, 5): 0.3, (1, 0): 9.0}
    d = {**a, (0, 5): 0.3 * (1 + 1e-12), (2, 0): 0.0}
    assert sign_test(d, c, "min") == PairedTest(4, 1, 1, 6 / 32) and not sign_test(d, c, "min").significant
    # a NaN (a diverged run) loses to any number, in either direction; two NaNs tie
    nan = {(0, 0): math.nan, (0, 1): math.nan}
    assert sign_test({(0, 0): 5.0, (0, 1): math.nan}, nan, "min") == PairedTest(1, 1, 0, 0.5)
    assert sign_test({(0, 0): -5.0}, nan, "max") == PairedTest(1, 0, 0, 0.5)
    assert sign_test({}, {}, "min") == PairedTest(0, 0, 0, 1.0)
    with pytest.raises(ValueError, match="Invalid better: 'up'"):
        sign_test(a, b, "up")  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=12))
def test_the_two_directions_split_the_untied_pairs(pairs) -> None:
    a = {(0, i): x for i, (x, _) in enumerate(pairs)}
    b = {(0, i): y for i, (_, y) in enumerate(pairs)}
    ab, ba = sign_test(a, b, "min"), sign_test(b, a, "min")
    assert (ab.wins, ab.ties, ab.losses) == (ba.losses, ba.ties, ba.wins)
    assert ab.wins + ab.ties + ab.losses == len(pairs)
    assert not (ab.significant and ba.significant) and 0 < ab.p <= 1


def _result(label: str, seed: int, data_seed: int = 0, **summary: float):
    config = SimpleNamespace(seed=seed, data=SimpleNamespace(seed=data_seed))
    return SimpleNamespace(label=label, config=config, summary=summary)


def test_bold_only_where_the_best_beats_the_runner_up() -> None:
    results = []
    for s in range(5):
        results += [
            _result("a", s, q_train_loss=0.30 + s / 100, q_test_acc=0.80 + s / 100),  # best loss, 5 of 5 pairs
            _result("b", s, q_train_loss=0.40 + s / 100, q_test_acc=0.81 + s / 100),  # best acc, by 1e-2 every pair
            _result("c", s, q_train_loss=0.50, q_test_acc=0.80 + s / 100 + (0.02 if s == 0 else 0.0)),
        ]
    rows = aggregate(results)
    assert [r.best for r in rows] == [frozenset({"q_train_loss"}), frozenset(), frozenset()]
    # accuracy: b's mean is best, but the runner-up c wins one of the five pairs: 4 of 5, p = 6/32
    tests = best_tests(rows)
    assert tests["q_train_loss"] == ("a", "b", PairedTest(5, 0, 0, 1 / 32))
    assert tests["q_test_acc"] == ("b", "c", PairedTest(4, 0, 1, 6 / 32))
    assert rows[0].values["q_train_loss"] == {(0, s): 0.30 + s / 100 for s in range(5)}
    _, cells = table_cells(rows, bold=lambda text: f"<{text}>")
    assert cells[0][2] == "<0.3200 ± 0.0158>" and cells[1][2] == "0.4200 ± 0.0158"
    md = markdown_table(rows)
    assert "| a | 5 | **0.3200 ± 0.0158** |" in md and md.endswith(f"\n\n{BOLD_NOTE}\n")


def test_pairs_are_keyed_by_data_seed_and_training_seed() -> None:
    # two problems × two seeds; b is worse on every pair though the same training seeds appear twice
    results = [
        _result(label, s, p, q_train_loss=loss + p + s / 10)
        for p in (0, 1)
        for s in (0, 1)
        for label, loss in (("a", 0.1), ("b", 0.2))
    ]
    rows = aggregate(results)
    assert rows[0].values["q_train_loss"].keys() == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert best_tests(rows)["q_train_loss"][2] == PairedTest(4, 0, 0, 1 / 16)
    assert run_key(results[0]) == (0, 0) and run_key(SimpleNamespace(config=None)) is None
    # a config as stored (a dict), and data without a seed (a user's own tensors)
    assert run_key(SimpleNamespace(config={"seed": 3, "data": {"seed": 2}})) == (2, 3)
    assert run_key(SimpleNamespace(config={"seed": 3, "data": None})) == (None, 3)
    assert run_key(SimpleNamespace(config={"label": "x"})) is None


def test_runs_without_a_key_count_in_the_mean_but_are_never_bold() -> None:
    results = [SimpleNamespace(label=label, config=None, summary={"q_train_loss": v}) for label, v in [("a", 1.0)] * 6]
    results += [SimpleNamespace(label="b", config=None, summary={"q_train_loss": 2.0})] * 6
    rows = aggregate(results)
    assert rows[0].stats["q_train_loss"] == (1.0, 0.0) and rows[0].values["q_train_loss"] == {}
    assert all(not r.best for r in rows) and "sign test" not in markdown_table(rows)
    keyed = aggregate(results, keys=[(0, i % 6) for i in range(12)])
    assert keyed[0].best == {"q_train_loss"}
    with pytest.raises(ValueError, match="keys: 1 keys for 12 results"):
        aggregate(results, keys=[(0, 0)])


def test_pairwise_matrix_and_the_untuned_note() -> None:
    results = [_result(label, s, q_train_loss=v + s) for s in range(6) for label, v in (("a", 0.1), ("b*", 0.2))]
    rows = [*aggregate(results), Row("c", 0, {})]
    matrix = pairwise_tests(rows, "q_train_loss")
    assert matrix[0][1] == PairedTest(6, 0, 0, 1 / 64) and matrix[1][0] == PairedTest(0, 0, 6, 1.0)
    assert matrix[0][0] is None and matrix[2][0] is None and matrix[0][2] is None
    assert markdown_table(rows).endswith(f"\n\n{BOLD_NOTE}\n\n{UNTUNED_NOTE}\n")
