"""Hierarchical debugging: the failing call tree, bottom-up call verdicts, helper checks, strategy wiring.

The shipping fixture has its bug in a helper (`units.to_grams`, ounces off by ten) that three
callers use; nine tests pass and three fail, and the suspiciousness ranking puts a caller
(`packing.parcel_weight`) above the helper. Model answers are canned (litellm mock_response).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from rich.console import Console

from conftest import FIXTURES, mocks, run_cli
from tracefix.debugger.answers import MalformedAnswer, parse_call_verdicts
from tracefix.debugger.callgraph import bottom_up, call_tree, failing_path, raising_chain
from tracefix.config import Config
from tracefix.debugger.hierarchy import call_text, in_order, judge_bottom_up, pairs_of, path_of, wants_hierarchy
from tracefix.debugger.llm import LLMClient
from tracefix.repair import validate as validate_module
from tracefix.repair.patch import apply_edits_in_memory
from tracefix.repair.setup import targets_of
from tracefix.repair.helper_checks import checks_from, literal_summary, module_name, stable_checks
from tracefix.repair.plan import located
from tracefix.tracer.project import source_files
from tracefix.tracer import records
from tracefix.tracer.records import CallRecord
from tracefix.tracer.tracing import trace_tests
from tracefix.tracer.view import render_call_tree

TO_GRAMS = "shipping/units.py::to_grams"
PARCEL_WEIGHT = "shipping/packing.py::parcel_weight"
WITHIN_LIMIT = "shipping/packing.py::within_limit"
QUOTE = "shipping/rates.py::quote"
BAND_PRICE = "shipping/rates.py::band_price"

HELPER_WRONG = json.dumps([{"call": 1, "correct": False, "explanation": "16 oz is 454 g, not 45"}])
ALL_RIGHT = json.dumps([{"call": 1, "correct": True, "explanation": "fine"}])


def to_grams_code(oz: str = "28.349523125", lb: str = "453.59237") -> str:
    return f'''```python
def to_grams(amount, unit):
    """`amount` of `unit` ("g", "kg", "lb" or "oz") in grams, rounded to the nearest gram."""
    grams_per_unit = {{"g": 1, "kg": 1000, "lb": {lb}, "oz": {oz}}}
    if unit not in grams_per_unit:
        raise ValueError(f"unknown unit {{unit!r}}")
    return round(amount * grams_per_unit[unit])
```'''


@pytest.fixture(scope="module")
def shipping(tmp_path_factory):
    """One copy of the shipping fixture, its coverage run, and the traces of its failing tests."""
    root = tmp_path_factory.mktemp("ship") / "shipping"
    shutil.copytree(FIXTURES / "shipping", root)
    loc, coverage = located(root, Config())
    failing = [o.nodeid for o in loc.outcomes if o.bad]
    run = trace_tests(root, failing, files=source_files(root))
    return root, loc, coverage, run


def mock_client(*answers: str) -> LLMClient:
    return LLMClient(Config(model="openai/mock", cache_dir=None, mock_responses=answers))


def call(id_, function, parent=None, depth=0, returned="1", raised=None, **args):
    return CallRecord(id=id_, parent=parent, function=function, depth=depth, args={k: repr(v) for k, v in args.items()},
                      visits=(), returned=None if raised else returned, raised=raised)


def synthetic(calls, outcome="failed") -> records.TestTrace:
    return records.TestTrace("tests/test_x.py::test_x", outcome, "", "", (), tuple(calls))


# --- the call tree -------------------------------------------------------------------------------

def test_failing_path_of_an_assertion_failure_is_the_last_top_level_call(shipping):
    _root, _loc, _cov, run = shipping
    trace = next(t for t in run.traces if t.nodeid.endswith("test_quote_in_ounces"))
    region = failing_path(call_tree(trace))
    assert [n.function for n in region] == [QUOTE, PARCEL_WEIGHT, TO_GRAMS, BAND_PRICE]
    assert region[2].args == {"amount": "40", "unit": "'oz'"} and region[2].returned == "113"


def test_bottom_up_puts_every_callee_before_its_callers_once(shipping):
    _root, _loc, _cov, run = shipping
    order = path_of(run.traces)
    assert sorted(order) == sorted({TO_GRAMS, PARCEL_WEIGHT, QUOTE, BAND_PRICE, WITHIN_LIMIT})
    assert order[0] == TO_GRAMS
    assert order.index(PARCEL_WEIGHT) < order.index(QUOTE) and order.index(BAND_PRICE) < order.index(QUOTE)


def test_failing_region_of_a_crash_is_the_subtree_the_exception_left():
    trace = synthetic([
        call(1, "m.py::setup"),
        call(2, "m.py::run", raised="KeyError: 'x'"),
        call(3, "m.py::parse", parent=2, depth=1, returned="{}"),
        call(4, "m.py::lookup", parent=2, depth=1, raised="KeyError: 'x'"),
        call(5, "m.py::later"),
    ])
    tree = call_tree(trace)
    assert [n.id for n in failing_path(tree)] == [2, 3, 4]
    assert [n.function for n in raising_chain(tree)] == ["m.py::run", "m.py::lookup"]
    assert bottom_up([failing_path(tree)]) == ["m.py::parse", "m.py::lookup", "m.py::run"]


def test_recursion_and_mutual_recursion_list_each_function_once():
    trace = synthetic([
        call(1, "m.py::even"),
        call(2, "m.py::odd", parent=1, depth=1),
        call(3, "m.py::even", parent=2, depth=2),
        call(4, "m.py::leaf", parent=3, depth=3),
    ])
    assert bottom_up([failing_path(call_tree(trace))]) == ["m.py::leaf", "m.py::odd", "m.py::even"]


def test_a_call_that_never_returned_says_what_stopped_it():
    # The hierarchical prompt told the model "stopped by the timeout" for an endless recursion.
    unfinished = [replace(call(1, "m.py::f", n=3), finished=False),
                  replace(call(2, "m.py::f", parent=1, depth=1, n=2), finished=False)]
    overflow = replace(synthetic(unfinished), message="RecursionError: maximum recursion depth exceeded")
    hang = synthetic(unfinished, outcome="timeout")
    assert call_text("f", pairs_of("m.py::f", [overflow], [])[0]) == (
        "f(n=3) did not return (stopped by a RecursionError: the stack overflowed)")
    assert call_text("f", pairs_of("m.py::f", [hang], [])[0]) == "f(n=3) did not return (stopped by the per-test timeout)"


def test_auto_strategy_goes_hierarchical_only_with_more_than_one_function_on_the_path(shipping):
    _root, _loc, _cov, run = shipping
    single = synthetic([call(1, "m.py::f"), call(2, "m.py::f", parent=1, depth=1)])
    assert wants_hierarchy("auto", run.traces)
    assert not wants_hierarchy("auto", [single])
    assert wants_hierarchy("hierarchical", [single])
    assert not wants_hierarchy("flat", run.traces)


# --- call verdicts -------------------------------------------------------------------------------

def test_call_verdicts_accept_ids_written_many_ways():
    text = 'Here you go:\n```json\n[{"call": "call 2", "correct": "no", "explanation": "x"},\n {"id": "#1", "correct": True},]\n```'
    verdicts = parse_call_verdicts(text, [1, 2])
    assert [(v.call, v.correct) for v in verdicts] == [(2, False), (1, True)]
    assert parse_call_verdicts('{"calls": [{"pair": 3, "ok": false}]}', [3])[0].correct is False


def test_call_verdicts_without_known_calls_are_malformed():
    with pytest.raises(MalformedAnswer, match="not one of"):
        parse_call_verdicts('[{"call": 9, "correct": false}]', [1, 2])
    with pytest.raises(MalformedAnswer, match="empty"):
        parse_call_verdicts("  ", [1])


# --- bottom-up judging ---------------------------------------------------------------------------

def test_deepest_function_with_a_wrong_pair_is_the_prime_suspect(shipping):
    root, _loc, coverage, run = shipping
    hierarchy = judge_bottom_up(root, mock_client(HELPER_WRONG), Config(model="openai/mock"), run.traces, coverage,
                                source_files(root))
    assert hierarchy.prime == TO_GRAMS
    assert hierarchy.order[0] == TO_GRAMS
    assert [j.function for j in hierarchy.judgments] == [TO_GRAMS]  # judging stops at the first wrong one
    pairs = hierarchy.judgments[0].pairs
    assert any(p.failing and p.args == {"amount": "16", "unit": "'oz'"} and p.returned == "45" for p in pairs)
    assert any(not p.failing and p.returned == "454" for p in pairs)  # to_grams(1, 'lb') from a passing test
    passed = {o.nodeid for o in shipping[1].outcomes if o.outcome == "passed"}
    assert hierarchy.passing_tests and set(hierarchy.passing_tests) <= passed
    assert hierarchy.notes_for(TO_GRAMS) == ["call to_grams(amount=16, unit='oz') returned 45 is wrong: "
                                             "16 oz is 454 g, not 45"]


def test_hierarchical_order_puts_the_helper_first_even_when_the_ranking_puts_the_caller_first(shipping):
    root, loc, coverage, run = shipping
    ranked = [s.function for s in loc.functions]
    assert ranked.index(PARCEL_WEIGHT) < ranked.index(TO_GRAMS)  # the ranking blames the caller
    flat = targets_of(loc.functions, run.traces)
    assert flat[0][0].key == PARCEL_WEIGHT
    hierarchy = judge_bottom_up(root, mock_client(HELPER_WRONG), Config(model="openai/mock"), run.traces, coverage,
                                source_files(root))
    ordered = in_order(flat, hierarchy.order)
    assert ordered[0][0].key == TO_GRAMS
    assert sorted(t[0].key for t in ordered) == sorted(t[0].key for t in flat)


def test_without_a_wrong_pair_the_order_is_bottom_up(shipping):
    root, _loc, coverage, run = shipping
    path = path_of(run.traces)
    hierarchy = judge_bottom_up(root, mock_client(*[ALL_RIGHT] * len(path)), Config(model="openai/mock"),
                                run.traces, coverage, source_files(root))
    assert hierarchy.prime is None
    assert list(hierarchy.order) == path
    assert len(hierarchy.judgments) == len(path)


def test_malformed_call_verdicts_twice_leave_the_function_unjudged(shipping):
    root, _loc, coverage, run = shipping
    path = path_of(run.traces)
    answers = ["no idea", "still no idea"] + [ALL_RIGHT] * (len(path) - 1)
    hierarchy = judge_bottom_up(root, mock_client(*answers), Config(model="openai/mock"), run.traces, coverage,
                                source_files(root))
    assert "malformed call verdicts twice" in hierarchy.judgments[0].note
    assert hierarchy.prime is None


# --- helper checks -------------------------------------------------------------------------------

def test_only_uncut_literal_summaries_become_check_arguments():
    assert literal_summary("[(16, 'oz')]") and literal_summary("'small'") and literal_summary("1.5")
    assert not literal_summary("[1, 2, 3, 4, 5, 6, 7, 8, ...]")
    assert not literal_summary("Cart(lines=[])")
    assert not literal_summary("<function f>")


def test_a_generator_stopped_at_a_yield_gives_no_helper_check(tmp_path):
    from tracefix.debugger.hierarchy import Pair
    from tracefix.tracer.cfg import functions_in

    (tmp_path / "gen.py").write_text("def words(text):\n    yield from text.split()\n")
    (info,) = functions_in((tmp_path / "gen.py").read_text(), "gen.py")
    stopped = Pair(1, info.key, "test_gen.py::test_it", False, {"text": "'a b'"}, None, None)
    ran_out = Pair(2, info.key, "test_gen.py::test_it", False, {"text": "'a b'"}, "None", None)
    assert [c.returned for c in checks_from(tmp_path, info, [stopped, ran_out])] == ["None"]


def test_module_name_follows_the_package_chain(tmp_path):
    (tmp_path / "src" / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "pkg" / "sub" / "__init__.py").write_text("")
    assert module_name(tmp_path, "src/pkg/sub/mod.py") == "pkg.sub.mod"
    assert module_name(tmp_path, "solution.py") == "solution"


def _helper_checks(shipping):
    root, _loc, coverage, run = shipping
    hierarchy = judge_bottom_up(root, mock_client(HELPER_WRONG), Config(model="openai/mock"), run.traces, coverage,
                                source_files(root))
    info = next(f for t in run.traces for f in t.functions if f.key == TO_GRAMS)
    checks = stable_checks(root, checks_from(root, info, hierarchy.passing_pairs(TO_GRAMS)))
    return root, info, checks


def test_helper_checks_reject_a_helper_fix_that_breaks_a_passing_call_without_running_the_suite(shipping, monkeypatch):
    root, info, checks = _helper_checks(shipping)
    assert any(c.args == {"amount": "1", "unit": "'lb'"} and c.returned == "454" for c in checks)
    runs = []
    real = validate_module.run_tests
    monkeypatch.setattr(validate_module, "run_tests", lambda *a, **kw: runs.append(kw.get("test_ids")) or real(*a, **kw))
    # Fixes ounces, breaks pounds: the helper check of to_grams(1, 'lb') catches it.
    edited = apply_edits_in_memory(root, info, to_grams_code(lb="45.359237").split("```python\n")[1].split("```")[0])
    _loc = shipping[1]
    failing = [o.nodeid for o in _loc.outcomes if o.bad]
    outcome = validate_module.validate(root, edited, _loc.outcomes, failing, validate_module.TestSettings(), checks)
    assert not outcome.accepted
    assert "recorded calls of to_grams from passing tests" in outcome.reason
    assert "to_grams(amount=1, unit='lb') returned 45" in outcome.reason
    assert len(runs) == 1  # the whole suite never ran


def test_helper_checks_let_a_correct_helper_fix_through(shipping):
    root, info, checks = _helper_checks(shipping)
    edited = apply_edits_in_memory(root, info, to_grams_code().split("```python\n")[1].split("```")[0])
    loc = shipping[1]
    outcome = validate_module.validate(root, edited, loc.outcomes, [o.nodeid for o in loc.outcomes if o.bad],
                                       validate_module.TestSettings(), checks)
    assert outcome.accepted, outcome.reason


def test_checks_that_fail_on_the_unpatched_code_are_dropped(shipping):
    root, _info, checks = _helper_checks(shipping)
    from dataclasses import replace

    lying = replace(checks[0], returned="-1")
    assert stable_checks(root, (lying, checks[0])) == (checks[0],)


# --- the repair loop and the CLI -----------------------------------------------------------------

def test_helper_pair_judged_wrong_makes_the_patch_touch_the_helper_only(fixture_copy):
    root = fixture_copy("shipping")
    env = mocks(HELPER_WRONG, "[]", "[]", to_grams_code())
    result = run_cli("fix", str(root), "--model", "openai/mock", "--cache", "off", "--strategy", "hierarchical",
                     env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    changed = [l for l in result.stdout.splitlines() if l.startswith("diff --git")]
    assert changed == ["diff --git a/shipping/units.py b/shipping/units.py"]
    assert '+    grams_per_unit = {"g": 1, "kg": 1000, "lb": 453.59237, "oz": 28.349523125}' in result.stdout
    # the call tree with the helper's verdict, and the candidate was for the helper
    assert "to_grams(amount=16, unit='oz') -> 45  ✗ 16 oz is 454 g, not 45" in result.stderr
    assert "prime suspect: shipping/units.py::to_grams" in result.stderr
    assert "iteration 1: candidate for shipping/units.py::to_grams accepted" in result.stderr


def test_flat_strategy_asks_no_call_verdicts_and_follows_the_ranking(fixture_copy):
    root = fixture_copy("shipping")
    # The first target is the caller; a to_grams answer for it is no fix of parcel_weight.
    env = mocks("[]", "[]", to_grams_code())
    result = run_cli("fix", str(root), "--model", "openai/mock", "--cache", "off", "--strategy", "flat",
                     "--max-iters", "1", "--format", "json", env=env, timeout=240)
    report = json.loads(result.stdout)
    assert report["hierarchy"] is None
    assert report["candidates"][0]["function"] == PARCEL_WEIGHT
    assert "no function named parcel_weight" in report["candidates"][0]["rejected"]


def test_json_report_carries_the_bottom_up_verdicts(fixture_copy):
    root = fixture_copy("shipping")
    env = mocks(HELPER_WRONG, "[]", "[]", to_grams_code())
    result = run_cli("fix", str(root), "--model", "openai/mock", "--cache", "off", "--format", "json",
                     env=env, timeout=240)
    report = json.loads(result.stdout)
    assert report["status"] == "fixed"
    hierarchy = report["hierarchy"]
    assert hierarchy["prime"] == TO_GRAMS
    judged = hierarchy["judgments"][0]
    assert judged["function"] == TO_GRAMS and judged["verdicts"][0] == {
        "call": 1, "correct": False, "explanation": "16 oz is 454 g, not 45"}


def test_call_tree_view_shows_each_functions_verdict(shipping):
    _root, _loc, _cov, run = shipping
    trace = next(t for t in run.traces if t.nodeid.endswith("test_quote_in_ounces"))
    console = Console(record=True, width=200, no_color=True)
    render_call_tree(console, trace, {(TO_GRAMS, None): (False, "ounces off by ten"),
                                      (PARCEL_WEIGHT, None): (True, "2 calls judged right")})
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0] == "call tree of tests/test_shipping.py::test_quote_in_ounces"
    assert "      to_grams(amount=40, unit='oz') -> 113  ✗ ounces off by ten" in lines
    assert "    parcel_weight(items=[(40, 'oz')], box='small') -> 213  ✓ 2 calls judged right" in lines
