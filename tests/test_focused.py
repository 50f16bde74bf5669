"""Focused sampling: the marked suspect, the facts of the real run, several samples, the agreed fix."""

from __future__ import annotations

import json

from tracefix.config import Config
from tracefix.debugger.prompts import MARK, focused_messages, marked_source, run_facts
from tracefix.repair.fix import fix_project
from tracefix.repair.focused import marked_lines
from tracefix.repair.setup import located_start
from tracefix.debugger.prompts import failure_context

from test_fix import GOOD_MEAN

WRONG_MEAN = GOOD_MEAN.replace("len(values)\n", "(len(values) - 1)\n")
# Another correct fix, written differently: votes decide between the two.
OTHER_GOOD = '''```python
def mean(values):
    """Arithmetic mean of a non-empty list of numbers."""
    return sum(values) / len(values)
```'''


def config(tmp_path, *answers: str, **overrides) -> Config:
    return Config(model="openai/mock-model", cache_dir=None, log_path=tmp_path / "log.jsonl",
                  mock_responses=answers, strategy="focused", **overrides)


def requests(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]


GRADES = """\
def grade(score):
    if score >= 90:
        return "A"
    if score > 80:
        return "B"
    return "C"
"""
GRADE_TESTS = """\
from grades import grade


def test_a():
    assert grade(95) == "A"


def test_b():
    assert grade(85) == "B"


def test_b_at_the_boundary():
    assert grade(80) == "B"


def test_c():
    assert grade(50) == "C"
"""


def test_the_prompt_marks_the_suspicious_lines_and_gives_the_real_inputs_and_result(tmp_path):
    root = tmp_path / "grades"
    (root / "tests").mkdir(parents=True)
    (root / "grades.py").write_text(GRADES)
    (root / "tests" / "test_grades.py").write_text(GRADE_TESTS)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = [\".\"]\n")
    cfg = Config(test_timeout=5)
    start = located_start(root, cfg)
    info, nodeid = start.targets(cfg)[0]
    assert info.qualname == "grade"
    marked = marked_lines(start, info)
    assert 4 in marked and 2 not in marked  # `if score > 80` yes, the line every test runs no
    source = marked_source(root, info, marked)
    assert f"    if score > 80:  {MARK}" in source
    own, _helpers = run_facts(start.trace_of(cfg, nodeid), info.key, 4)
    assert own == ["grade(score=80) returned 'C'"]
    outcome = next(o for o in start.outcomes if o.nodeid == nodeid)
    messages = focused_messages(root, info, marked, start.trace_of(cfg, nodeid),
                                failure_context(root, nodeid, outcome.message, outcome.longrepr),
                                "minimal", len, 100_000)
    text = messages[-1]["content"]
    assert "really did" in text and own[0] in text and "Change as few lines" in text
    assert "Answer in exactly this form:\nBug: " in text  # a form: the small model stopped after a sentence
    assert "[block" not in text  # no block dump


def test_lines_that_all_score_alike_are_not_marked(fixture_copy):
    root = fixture_copy("average")
    cfg = Config(test_timeout=5)
    start = located_start(root, cfg)
    info, _nodeid = start.targets(cfg)[0]
    assert marked_lines(start, info) == []
    assert MARK not in marked_source(root, info, [])


def test_several_samples_are_validated_and_the_fix_most_of_them_agree_on_wins(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, GOOD_MEAN, OTHER_GOOD, OTHER_GOOD, max_iters=1))
    assert report.status == "fixed"
    assert len(requests(tmp_path)) == 3
    # three samples, two distinct candidates validated (both pass), one duplicate not rerun
    assert sum(1 for c in report.candidates if c.outcome is not None) == 2
    assert any(c.rejected == "the same code as an earlier sample" for c in report.candidates)
    assert "sum(values) / len(values)" in report.diff  # two votes beat the first-come one


def test_a_wrong_round_feeds_the_next_one_its_best_attempt(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, WRONG_MEAN, WRONG_MEAN, WRONG_MEAN,
                                      GOOD_MEAN, WRONG_MEAN, WRONG_MEAN, max_iters=2))
    assert report.status == "fixed" and "+    return total / len(values)" in report.diff
    second_round = requests(tmp_path)[3]["messages"][-1]["content"]
    assert "A previous attempt that was rejected" in second_round and "(len(values) - 1)" in second_round


def test_a_spent_token_budget_validates_what_it_paid_for_and_stops(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, GOOD_MEAN, GOOD_MEAN, GOOD_MEAN, budget_tokens=1))
    assert len(requests(tmp_path)) == 1  # the budget is checked before each request
    assert report.status == "fixed" and "+    return total / len(values)" in report.diff


def test_apply_writes_the_fix_and_the_diff_still_shows_it(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, GOOD_MEAN, GOOD_MEAN, GOOD_MEAN, max_iters=1, apply=True,
                                      allow_dirty=True))
    assert report.status == "fixed" and report.applied == ("stats/summary.py",)
    assert "+    return total / len(values)" in report.diff  # taken before the files were written
    assert "return total / len(values)" in (root / "stats/summary.py").read_text()
