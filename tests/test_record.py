"""The typed run record: what metrics.json holds, read back strictly, old run directories included."""

import json
import math

import numpy as np
import pytest

from catdog_zoo import RunRecord, ZooError
from catdog_zoo.runs.record import read_run


def test_a_finished_runs_record_round_trips_exactly(tiny_run):
    written = json.loads((tiny_run / "metrics.json").read_text())
    record = RunRecord.from_dict(written)
    assert record.to_dict() == written and list(record.to_dict()) == list(written)
    assert record.overfit_gap == pytest.approx(written["train_accuracy"] - written["val_accuracy"])
    config, again = read_run(tiny_run)
    assert again == record and config.image_size == (40, 40)


def test_an_old_record_without_newer_keys_still_loads_and_unknown_keys_are_kept():
    old = {"model": "baseline", "class_names": ["cats", "dogs"], "val_accuracy": 0.6, "epochs": 20,
           "written_by_a_future_version": {"x": 1}}
    record = RunRecord.from_dict(old)
    assert record.test_accuracy is None and record.stages == {} and record.total_epochs == 20
    assert record.overfit_gap is None and record.to_dict()["written_by_a_future_version"] == {"x": 1}
    assert record.calibration is None and record.to_dict()["calibration"] is None  # before calibration was recorded
    assert RunRecord.from_dict({**old, "calibration": {"temperature": 1.5}}).calibration == {"temperature": 1.5}


@pytest.mark.parametrize("change, message", [
    ({"val_accuracy": "high"}, "'val_accuracy' must be a finite number"),
    ({"val_accuracy": None}, "has no val_accuracy"),
    ({"class_names": "cats,dogs"}, "'class_names' must be a list"),
    ({"num_params": 1.5}, "'num_params' must be an integer"),
    ({"test_accuracy": float("nan")}, "'test_accuracy' must be a finite number"),
    ({"calibration": [1.5]}, "'calibration' must be a mapping"),
])
def test_a_record_with_a_wrong_value_is_refused_in_one_line(change, message):
    data = {"model": "m", "class_names": ["a", "b"], "val_accuracy": 0.5, **change}
    with pytest.raises(ZooError, match=message):
        RunRecord.from_dict(data, "metrics.json")


def test_non_finite_numbers_are_written_as_null():
    record = RunRecord(model="m", class_names=["a", "b"], val_accuracy=0.5, train_loss=math.inf,
                       stages={"head": {"val_accuracy": math.nan}})
    text = json.dumps(record.to_dict(), allow_nan=False)
    assert '"train_loss": null' in text and '"val_accuracy": null' in text


def test_per_class_scores_are_recorded_reported_and_match_the_confusion_matrix(tiny_run):
    import catdog_zoo
    record = read_run(tiny_run)[1]
    matrix = np.array(record.confusion_matrix["matrix"])
    for index, name in enumerate(record.class_names):
        scores = record.per_class[name]
        assert scores["support"] == matrix[index].sum()
        assert scores["recall"] == pytest.approx(matrix[index, index] / matrix[index].sum(), abs=1e-4)
        if matrix[:, index].sum():
            assert scores["precision"] == pytest.approx(matrix[index, index] / matrix[:, index].sum(), abs=1e-4)
    assert "Per class" in (tiny_run / "report.html").read_text()
    evaluated = catdog_zoo.evaluate(tiny_run, split="test")
    assert evaluated["per_class"] == record.per_class  # the record's split is test
