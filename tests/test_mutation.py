"""Model-free repair: mutation operators, the in-process validation worker, the search."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest
from conftest import run_cli

from tracefix.config import Config, STRATEGIES
from tracefix.repair import mutation_search
from tracefix.repair.fix import fix_project
from tracefix.repair.mutants import Mutant, mutants_of
from tracefix.repair.mutation_search import fix_by_mutation
from tracefix.tracer.worker import Worker

SOURCE = '''import os  # a comment the edits must keep


def pick(xs, n, flag):
    """Docstring."""
    total = 0
    for i in range(1, n):   # odd spacing kept
        if xs[i] < total and flag:
            total += xs[i]
    found = any(x is None for x in xs) or n in xs
    big = max(xs)
    print(total, big)
'''


def _edits(lines, operator=None):
    out = {}
    for m in mutants_of(SOURCE, "m.py", "pick", lines):
        if operator is None or m.operator == operator:
            out[m.description] = m
    return out


def _changed_lines(m: Mutant) -> list[str]:
    old = SOURCE.splitlines()
    new = m.file_text.splitlines()
    return [n for o, n in zip(old, new) if o != n] + new[len(old):]


def test_comparison_swap_changes_only_the_operator_and_keeps_formatting():
    m = _edits([8], "compare")["line 8: `xs[i] < total` -> `xs[i] <= total`"]
    assert _changed_lines(m) == ["        if xs[i] <= total and flag:"]
    assert m.file_text.startswith("import os  # a comment the edits must keep\n")
    assert "for i in range(1, n):   # odd spacing kept" in m.file_text


def test_off_by_one_on_range_bound_and_constants():
    edits = _edits([7])
    assert _changed_lines(edits["line 7: `n` -> `n + 1`"]) == ["    for i in range(1, n + 1):   # odd spacing kept"]
    assert _changed_lines(edits["line 7: `1` -> `0`"]) == ["    for i in range(0, n):   # odd spacing kept"]
    assert "line 7: `range(1, n)` -> `range(n, 1)`" in edits  # swapped call arguments


def test_boolean_negation_and_augmented_assignment_swaps():
    edits = _edits([8, 9])
    assert "line 8: `xs[i] < total and flag` -> `xs[i] < total or flag`" in edits
    assert _changed_lines(edits["line 8: `flag` -> `not flag`"]) == ["        if xs[i] < total and not flag:"]
    assert _changed_lines(edits["line 9: `total += xs[i]` -> `total -= xs[i]`"]) == ["            total -= xs[i]"]
    assert "line 9: `i` -> `i + 1`" in edits  # an index


def test_is_in_any_min_swaps():
    edits = _edits([10, 11])
    assert "line 10: `x is None` -> `x == None`" in edits
    assert "line 10: `n in xs` -> `n not in xs`" in edits
    assert _changed_lines(edits["line 10: `any` -> `all`"]) == [
        "    found = all(x is None for x in xs) or n in xs"]
    assert _changed_lines(edits["line 11: `max` -> `min`"]) == ["    big = min(xs)"]


def test_return_where_the_function_falls_off_its_end_and_statement_deletion():
    edits = _edits([12])
    inserted = edits["line 12: insert `return total` after `print(total, big)`"]
    assert inserted.file_text.endswith("    print(total, big)\n    return total\n")
    assert inserted.function_source.endswith("    return total\n") and inserted.first_line == 4
    assert _changed_lines(edits["line 12: `print(total, big)` -> `pass`"]) == ["    pass"]


def test_every_mutant_parses_and_differs_from_the_original():
    original = ast.dump(ast.parse(SOURCE))
    mutants = mutants_of(SOURCE, "m.py", "pick", range(1, 13))
    assert len(mutants) > 50
    for m in mutants:
        assert ast.dump(ast.parse(m.file_text)) != original
        assert m.function_source in m.file_text


def test_methods_are_found_by_qualname():
    source = "class C:\n    def m(self, a):\n        return a < 2\n"
    (m,) = [m for m in mutants_of(source, "c.py", "C.m", [3]) if m.description.endswith("`a <= 2`")]
    assert m.function_source == "    def m(self, a):\n        return a <= 2\n"


# --- the worker ---------------------------------------------------------------------------

PROJECT = {
    "calc.py": "def total(xs):\n    s = 0\n    for i in range(1, len(xs)):\n        s += xs[i]\n    return s\n",
    "test_calc.py": ("from calc import total\n\n\ndef test_three():\n    assert total([1, 2, 3]) == 6\n\n\n"
                     "def test_one():\n    assert total([5]) == 5\n\n\ndef test_none():\n    assert total([]) == 0\n"),
}
GOOD = "def total(xs):\n    s = 0\n    for i in range(0, len(xs)):\n        s += xs[i]\n    return s\n"


def _project(tmp_path: Path) -> Path:
    for name, text in PROJECT.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_candidate_can_be_given_a_shorter_per_test_timeout_than_the_workers(tmp_path):
    root = _project(tmp_path)
    slow = "def total(xs):\n    import time\n    time.sleep(1.5)\n    return sum(xs)\n"
    with Worker(root, ["test_calc.py::test_three"], test_timeout=5) as worker:
        assert worker.try_candidate("calc.py", "total", slow, 1).all_passed
        hurried = worker.try_candidate("calc.py", "total", slow, 1, test_timeout=0.5)
        assert hurried.status == "ok" and dict(hurried.outcomes) == {"test_calc.py::test_three": "timeout"}
        assert worker.try_candidate("calc.py", "total", slow, 1).all_passed  # the worker's own again


def test_worker_swaps_the_code_seen_through_from_import_and_restores_it(tmp_path):
    root = _project(tmp_path)
    with Worker(root, ["test_calc.py::test_three", "test_calc.py::test_one"], test_timeout=2) as worker:
        assert worker.start(), worker.error
        before = worker.try_candidate("calc.py", "total", PROJECT["calc.py"], 1, first_failure=False)
        good = worker.try_candidate("calc.py", "total", GOOD, 1)
        again = worker.try_candidate("calc.py", "total", "def total(xs):\n    return -1\n", 1, first_failure=False)
    assert dict(before.outcomes) == {"test_calc.py::test_three": "failed", "test_calc.py::test_one": "failed"}
    assert good.all_passed
    assert dict(again.outcomes) == {"test_calc.py::test_three": "failed", "test_calc.py::test_one": "failed"}


@pytest.mark.parametrize("body, status, outcome", [
    ("    while True:\n        pass\n", "ok", "timeout"),
    ("    return total(xs)\n", "ok", "failed"),
    ("    import os\n    os._exit(3)\n", "crashed", None),
])
def test_a_runaway_candidate_costs_itself_only(tmp_path, body, status, outcome):
    root = _project(tmp_path)
    with Worker(root, ["test_calc.py::test_three"], test_timeout=1) as worker:
        bad = worker.try_candidate("calc.py", "total", "def total(xs):\n" + body, 1)
        good = worker.try_candidate("calc.py", "total", GOOD, 1)
    assert bad.status == status and not bad.all_passed
    if outcome:
        assert dict(bad.outcomes) == {"test_calc.py::test_three": outcome}
    assert good.all_passed
    assert worker.starts == (2 if status == "crashed" else 1)


def test_worker_answers_unsupported_for_what_it_cannot_swap(tmp_path):
    root = _project(tmp_path)
    (root / "calc.py").write_text("import functools\n\n\n@functools.lru_cache\n" + PROJECT["calc.py"].replace(
        "total(xs)", "total(xs=())"))
    with Worker(root, ["test_calc.py::test_none"], test_timeout=2) as worker:
        answer = worker.try_candidate("calc.py", "total", GOOD, 4)
    assert answer.status == "unsupported" and "not a plain function" in answer.why


# --- the search ---------------------------------------------------------------------------

def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_mutation_fixes_the_off_by_one_fixture_without_a_model_and_leaves_the_tree_alone(fixture_copy):
    root = fixture_copy("offbyone")
    before = _hashes(root)
    report = fix_project(root, Config(strategy="mutation", test_timeout=2))
    assert report.status == "fixed"
    assert report.usage is None
    assert any("fixed without a model call" in w for w in report.warnings)
    assert ("-    for start in range(len(values) - width):  # one window short\n"
            "+    for start in range(len(values) - width + 1):  # one window short\n") in report.diff
    changed = [line for line in report.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 2
    assert report.candidates[-1].outcome.accepted
    assert _hashes(root) == before


def test_apply_still_reports_the_diff_it_wrote(fixture_copy):
    # The diff is taken against the files as they were: after --apply they equal the edit.
    root = fixture_copy("offbyone")
    report = fix_project(root, Config(strategy="mutation", test_timeout=2, apply=True, allow_dirty=True))
    assert report.status == "fixed" and report.applied == ("window/moving.py",)
    assert "+    for start in range(len(values) - width + 1):  # one window short\n" in report.diff
    assert (root / "window/moving.py").read_text() == report.edited["window/moving.py"]


def test_a_looping_fixture_is_fixed_past_mutants_that_loop(fixture_copy):
    root = fixture_copy("search")
    report = fix_by_mutation(root, Config(test_timeout=1))
    assert report.status == "fixed", report.warnings
    assert "+            lo = mid + 1\n" in report.diff
    assert any("timeout" in c.outcome.reason for c in report.candidates if not c.outcome.accepted)


def test_mutants_that_hang_recurse_or_kill_the_worker_cost_one_candidate_each(fixture_copy, monkeypatch):
    root = fixture_copy("offbyone")
    real = mutation_search.ranked_mutants
    path = "window/moving.py"

    def with_runaways(root_, localization, sources, max_lines=12):
        generated, mutants = real(root_, localization, sources, max_lines)
        text = (root_ / path).read_text()
        runaways = []
        for body in ("    while True:\n        pass\n", "    return moving_sums(values, width)\n",
                     "    import os\n    os._exit(7)\n"):
            source = "def moving_sums(values, width):\n" + body
            start = text.index("def moving_sums")
            end = text.index("def largest")
            runaways.append(Mutant(path, "moving_sums", 7, "test", "runaway", 1.0, source, 4,
                                   text[:start] + source + "\n\n" + text[end:]))
        return generated + 3, runaways + mutants

    monkeypatch.setattr(mutation_search, "ranked_mutants", with_runaways)
    report = fix_by_mutation(root, Config(test_timeout=1))
    assert report.status == "fixed"
    reasons = [c.outcome.reason for c in report.candidates[:3]]
    assert "timeout" in reasons[0] and "failed" in reasons[1] and "crashed" in reasons[2]
    assert "+    for start in range(len(values) - width + 1):" in report.diff


def test_nothing_failing_is_reported_as_such(tmp_path):
    root = _project(tmp_path)
    (root / "calc.py").write_text(GOOD)
    assert fix_by_mutation(root, Config(test_timeout=2)).status == "nothing_failing"


def test_mutation_is_a_strategy_name():
    assert "mutation" in STRATEGIES


def test_an_edit_inside_a_nested_function_replaces_the_outer_one():
    source = "def outer(a):\n    def inner(b):\n        return b < a\n    return inner(1)\n"
    (m,) = [m for m in mutants_of(source, "n.py", "outer.<locals>.inner", [3]) if m.description.endswith("`b <= a`")]
    assert m.qualname == "outer" and m.first_line == 1
    assert m.function_source == source.replace("b < a", "b <= a")


def test_cli_fix_with_the_mutation_strategy_needs_no_model(fixture_copy):
    root = fixture_copy("offbyone")
    proc = run_cli("fix", str(root), "--strategy", "mutation", "--test-timeout", "2",
                   env={"TRACEFIX_MODEL": ""})
    assert proc.returncode == 0, proc.stderr
    assert "+    for start in range(len(values) - width + 1):" in proc.stdout
    assert "fixed without a model call" in proc.stderr


def test_a_candidate_that_spoils_a_parametrized_input_does_not_spoil_the_next(tmp_path):
    (tmp_path / "sorter.py").write_text("def first(xs):\n    return xs[0]\n")
    (tmp_path / "test_sorter.py").write_text(
        "import pytest\nfrom sorter import first\n\n\n@pytest.mark.parametrize('xs', [[3, 1, 2]])\n"
        "def test_first(xs):\n    assert first(xs) == 3\n")
    with Worker(tmp_path, ["test_sorter.py::test_first[xs0]"], test_timeout=2) as worker:
        spoiler = worker.try_candidate("sorter.py", "first", "def first(xs):\n    xs.clear()\n    return 0\n", 1)
        original = worker.try_candidate("sorter.py", "first", "def first(xs):\n    return xs[0]\n", 1)
    assert not spoiler.all_passed
    assert original.all_passed


def test_an_edit_that_leaves_an_identity_is_written_as_a_person_would():
    text = "def mean(values):\n    return sum(values) / (len(values) + 1)\n"
    edits = [m.function_source for m in mutants_of(text, "m.py", "mean", [2])]
    assert any("/ len(values)\n" in e for e in edits)
    assert not any("* 1)" in e or "+ 0)" in e or "- 0)" in e for e in edits)
    left = [m.function_source for m in mutants_of("def f(a):\n    return 1 + g(a)\n", "m.py", "f", [2])]
    assert any(e.endswith("    return g(a)\n") for e in left) and not any("1 * g(a)" in e or "0 + g(a)" in e for e in left)


@pytest.mark.parametrize("source, line, wanted", [
    # AttributeSwap: another attribute of the module sharing a word
    ("def f(n):\n    a = n.incoming_nodes\n    return n.outgoing_nodes\n", 3, "    return n.incoming_nodes\n"),
    # NoneGuard
    ("def f(h):\n    if h.next is None:\n        return 1\n    return 0\n", 2, "    if h is None or h.next is None:\n"),
    # KeepBest: a running best, a clamped sum
    ("def f(xs):\n    best = 0\n    for x in xs:\n        best = x + 1\n    return best\n", 4,
     "        best = max(best, x + 1)\n"),
    ("def f(xs):\n    s = 0\n    for x in xs:\n        s = s + x\n    return s\n", 4, "        s = max(0, s + x)\n"),
    # LoopCondition
    ("def f(queue):\n    while True:\n        queue.pop()\n", 2, "    while queue:\n"),
    # SliceRest: the rest of a sequence passed on, a loop over the part past k
    ("def f(a, b):\n    return f(a[1:], b)\n", 2, "    return f(a[1:], b[1:])\n"),
    ("def f(arr, k):\n    for x in arr:\n        yield x\n", 2, "    for x in arr[k:]:\n"),
    # OffByOne on an open slice end
    ("def f(val):\n    return val[1:]\n", 2, "    return val[1:-1]\n"),
    ("def f(xs, n):\n    return xs[:n]\n", 2, "    return xs[1:n]\n"),
    # WidenCondition
    ("def f(total, coins):\n    if total < 0:\n        return 0\n    return 1\n", 2, "    if total < 0 or not coins:\n"),
])
def test_the_structural_operators_make_the_edits_human_repairs_are(source, line, wanted):
    assert any(wanted in m.function_source for m in mutants_of(source, "m.py", "f", [line]))


def test_an_edit_that_leaves_a_bound_name_unread_is_not_proposed():
    # run 5's plausible-but-wrong HumanEval_108 fix: the comprehension's own variable dropped
    text = "def f(arr):\n    for num in arr:\n        s = sum(int(d) for d in str(num))\n    return s\n"
    edits = [m.function_source for m in mutants_of(text, "m.py", "f", [3])]
    assert edits, "the line has other edits"
    assert not any("int(num) for d in" in e for e in edits)
    # a parameter read only once stays read
    assert not any("return a + a" in m.function_source
                   for m in mutants_of("def f(a, b):\n    return a + b\n", "m.py", "f", [2]))
    # a swap that keeps every bound name read is still made
    assert any("return b - a" in m.function_source
               for m in mutants_of("def f(a, b):\n    return a - b\n", "m.py", "f", [2]))


def _one_function_project(root: Path, also_passing: bool, failing: int = 1,
                          body: str = "    return n % 2 == 1\n") -> Path:
    root.mkdir()
    (root / "calc.py").write_text(f"def is_even(n):\n{body}\n\ndef half(n):\n    return n // 2\n")
    tests = "from calc import half, is_even\n\n\n"
    tests += "".join(f"def test_even_{n}():\n    assert is_even({n})\n\n\n" for n in (4, 6, 8)[:failing])
    tests += "def test_half():\n    assert half(4) == 2\n"
    if also_passing:
        tests += "\n\ndef test_odd_is_not_even():\n    assert not is_even(4 + 0) or is_even(4)\n"
    (root / "test_calc.py").write_text(tests)
    return root


def test_a_fix_no_passing_test_checks_is_reported_as_weakly_checked(tmp_path):
    # Two failing tests and nothing else running `is_even`: `== 1` -> `!= 1` passes them as
    # well as the intended `== 0` does; the report says that only the failing tests vouch.
    report = fix_project(_one_function_project(tmp_path / "weak", False, failing=2),
                         Config(strategy="mutation", test_timeout=2))
    assert report.status == "fixed"
    weak = [w for w in report.warnings if w.startswith("weakly checked")]
    assert weak == ["weakly checked: no test that passed before runs the edited code, so only the 2 failing tests "
                    "it was made for check this fix; read it before applying, or add a test"]
    checked = fix_project(_one_function_project(tmp_path / "checked", True), Config(strategy="mutation", test_timeout=2))
    assert checked.status == "fixed"
    assert not any(w.startswith("weakly checked") or w.startswith("ambiguous") for w in checked.warnings)


def test_mutants_that_one_unvouched_test_cannot_tell_apart_are_named_and_none_is_taken(tmp_path):
    # One failing test alone checks `is_even`: `rest == 1` -> `rest != 1` passes it, and so
    # does `n % 2` -> `n % 3` on the line above (4 % 3 == 1): two choices the test cannot tell apart.
    root = _one_function_project(tmp_path / "one", False, body="    rest = n % 2\n    return rest == 1\n")
    before = _hashes(root)
    report = fix_project(root, Config(strategy="mutation", test_timeout=2))
    assert report.status == "no_fix" and not report.diff and not report.edited
    (said,) = [w for w in report.warnings if w.startswith("ambiguous")]
    assert "line 3: `rest == 1` -> `rest != 1`" in said and "line 2: `2` -> `3`" in said
    # another edit of the same expression is the same choice, not a rival
    assert "line 3: `1` -> `0`" not in said
    assert "Add a test that tells them apart" in said
    assert not any(c.outcome.accepted for c in report.candidates)
    assert "not taken" in report.candidates[-1].outcome.reason
    assert _hashes(root) == before
    # the same expression edited several ways is one choice: the fix is taken
    same = fix_project(_one_function_project(tmp_path / "same", False), Config(strategy="mutation", test_timeout=2))
    assert same.status == "fixed" and not any(w.startswith("ambiguous") for w in same.warnings)
    # the CLI: no validated fix, exit 1, the edits named
    proc = run_cli("fix", str(root), "--strategy", "mutation", "--test-timeout", "2", env={"TRACEFIX_MODEL": ""})
    assert proc.returncode == 1 and "ambiguous: " in proc.stderr and not proc.stdout.strip()


def test_the_functions_each_test_ran_are_read_once_per_run(tmp_path, monkeypatch):
    # A single failing test: the search asks whether it alone vouches for its winner, and the
    # portfolio asks again for the report's warning; both read one map of the coverage run.
    import tracefix.repair.setup as setup

    reads = []
    real = setup.functions_ran
    monkeypatch.setattr(setup, "functions_ran", lambda run, root: reads.append(root) or real(run, root))
    report = fix_project(_one_function_project(tmp_path / "p", False), Config(strategy="mutation", test_timeout=2))
    assert report.status == "fixed" and any(w.startswith("weakly checked") for w in report.warnings)
    assert len(reads) == 1


def test_edited_lines_are_read_from_the_diff_in_old_numbers():
    from tracefix.repair.checked_by import edited_lines

    diff = ("--- a/m.py\n+++ b/m.py\n@@ -3,3 +3,3 @@\n ctx\n-    old\n+    new\n ctx\n"
            "@@ -20,2 +20,3 @@\n ctx\n+    inserted\n ctx\n")
    assert edited_lines(diff) == {"m.py": {4, 20}}


def test_a_mutant_knows_the_span_it_edits_and_edits_of_one_expression_overlap():
    src = "def f(a, b):\n    x = a + 1\n    return not x == b\n"
    by = {m.description: m for m in mutants_of(src, "m.py", "f", [2, 3])}
    swap, unwrap = by["line 3: `x == b` -> `x != b`"], by["line 3: `not x == b` -> `x == b`"]
    constant, minus = by["line 2: `1` -> `2`"], by["line 2: `a + 1` -> `a - 1`"]
    assert swap.span == (3, 15, 3, 21) and constant.span == (2, 12, 2, 13)
    assert swap.overlaps(unwrap) and unwrap.overlaps(swap)  # one node inside the other
    assert constant.overlaps(minus)
    assert not swap.overlaps(constant) and not minus.overlaps(unwrap)
    assert not Mutant("m.py", "f", 2, "test", "d", 1.0, "", 1, "").overlaps(swap)  # no span: never
