"""Benchmark result files are strict JSON and their tables show what is missing as "-".

A model without a condition (the true-class control, Sound-of-Pixels) has no condition accuracy,
and a group with no scored mixture has no mean SDR: Python's json writes those as NaN, which
strict parsers (jq, JavaScript) refuse.
"""

from __future__ import annotations

import json
from argparse import Namespace

from helpers import BENCHMARKS, benchmark

learning_curves = benchmark("learning_curves")


def refuse_constant(name: str):
    raise ValueError(f"not strict JSON: {name}")


def groups(single: float, multi: float, same_class: float) -> dict:
    return {g: {"sdr": v, "sources": 4, "mixtures": 2, "skipped": 0}
            for g, v in (("single", single), ("multi", multi), ("same_class", same_class))}


def test_learning_curves_writes_strict_json_and_tabulates_missing_values_as_dashes(tmp_path):
    results = {
        "references": {"mixture": groups(0.25, -3.5, float("nan"))},
        "models": {
            "control": {"curve": {"500": {**groups(6.0, 1.0, float("nan")), "condition_accuracy": None}}},
            "TriBERT": {"curve": {"500": {**groups(7.5, 2.0, float("nan")), "condition_accuracy": 0.875}}},
        },
    }
    out = tmp_path / "curves.json"
    learning_curves.write_results(results, Namespace(out=str(out), plot=""))

    written = json.loads(out.read_text(), parse_constant=refuse_constant)
    assert written["models"]["control"]["curve"]["500"]["condition_accuracy"] is None
    assert written["models"]["TriBERT"]["curve"]["500"]["same_class"]["sdr"] is None
    rows = {line.split(" | ")[0].lstrip("| "): line for line in learning_curves.table(written).splitlines()}
    assert rows["mixture"].endswith("| 0.25 / -3.50 / - | |")
    assert rows["control"].endswith("| 6.00 / 1.00 / - | - |")
    assert rows["TriBERT"].endswith("| 7.50 / 2.00 / - | 0.88 |")


def test_committed_benchmark_results_are_strict_json():
    files = sorted((BENCHMARKS / "results").rglob("*.json"))
    assert files
    for path in files:
        json.loads(path.read_text(), parse_constant=refuse_constant)  # raises, naming the constant
