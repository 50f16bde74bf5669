"""`tracefix fix --decompose [--keep-structure]` on the ledger fixture: one 41-line function, refunds added
instead of subtracted; five tests pass, one fails. Model answers are canned (litellm mock_response)."""

from __future__ import annotations

import json
import re
import textwrap

from conftest import mocks, run_cli

MODEL = ["--model", "openai/mock", "--cache", "off"]

PARSE = '''def parse_entries(lines):
    entries = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            raise ValueError(f"line {number}: expected date,category,amount")
        date, category, amount_text = parts
        if len(date) != 10 or date[4] != "-" or date[7] != "-":
            raise ValueError(f"line {number}: bad date {date!r}")
        try:
            amount = round(float(amount_text), 2)
        except ValueError:
            raise ValueError(f"line {number}: bad amount {amount_text!r}") from None
        entries.append((date[:7], category.lower(), amount))
    return entries
'''

TOTALS_BUGGY = '''def totals_by_month(entries):
    totals = {}
    for month, category, amount in entries:
        per_month = totals.setdefault(month, {})
        if amount < 0:
            per_month[category] = per_month.get(category, 0) + abs(amount)
        else:
            per_month[category] = per_month.get(category, 0) + amount
    return totals
'''

TOTALS_FIXED = TOTALS_BUGGY.replace("+ abs(amount)", "- abs(amount)")

LINES = '''def report_lines(totals, currency):
    report = []
    for month in sorted(totals):
        per_month = totals[month]
        month_total = 0
        for category in sorted(per_month):
            value = round(per_month[category], 2)
            month_total += value
            report.append(f"{month} {category} {value:.2f} {currency}")
        report.append(f"{month} total {round(month_total, 2):.2f} {currency}")
    return report
'''

MAIN = '''def monthly_report(lines, currency="EUR"):
    """Totals per month and category, refunds (negative amounts) subtracted, as sorted report lines."""
    return report_lines(totals_by_month(parse_entries(lines)), currency)
'''

SPLIT = "```python\n" + "\n\n".join([PARSE, TOTALS_BUGGY, LINES, MAIN]) + "```"
# A "split" that changes behaviour: comments are no longer skipped.
BAD_SPLIT = SPLIT.replace('if not line or line.startswith("#"):', "if not line:")

RIGHT = json.dumps([{"call": 1, "correct": True, "explanation": "parses the lines"}])
TOTALS_WRONG = json.dumps([{"call": 1, "correct": False, "explanation": "the refund of 2.50 is added, not subtracted"}])


def inlined() -> str:
    from pathlib import Path

    original = (Path(__file__).resolve().parent.parent / "fixtures/ledger/ledger/report.py").read_text()
    function = original[original.index("def monthly_report"):]
    return "```python\n" + function.replace("+ abs(amount)", "- abs(amount)") + "```"


def test_split_is_debugged_bottom_up_and_the_patch_brings_the_helpers(fixture_copy):
    root = fixture_copy("ledger")
    answers = [SPLIT, RIGHT, TOTALS_WRONG, "[]", "[]", "```python\n" + TOTALS_FIXED + "```"]
    result = run_cli("fix", str(root), *MODEL, "--decompose", "--format", "json", env=mocks(*answers), timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "fixed"
    split = report["candidates"][0]
    assert split["iteration"] == 0 and split["outcome"]["accepted"]
    assert "split into parse_entries, totals_by_month, report_lines" in split["outcome"]["reason"]
    assert report["hierarchy"]["prime"] == "ledger/report.py::totals_by_month"
    assert report["candidates"][-1]["function"] == "ledger/report.py::totals_by_month"
    assert "+def totals_by_month(entries):" in report["diff"]
    assert "+            per_month[category] = per_month.get(category, 0) - abs(amount)" in report["diff"]


def test_keep_structure_carries_the_fix_back_into_the_original_function(fixture_copy):
    root = fixture_copy("ledger")
    answers = [SPLIT, RIGHT, TOTALS_WRONG, "[]", "[]", "```python\n" + TOTALS_FIXED + "```", inlined()]
    result = run_cli("fix", str(root), *MODEL, "--decompose", "--keep-structure", env=mocks(*answers), timeout=300)
    assert result.returncode == 0, result.stderr
    removed = [l for l in result.stdout.splitlines() if l.startswith("-") and not l.startswith("---")]
    added = [l for l in result.stdout.splitlines() if l.startswith("+") and not l.startswith("+++")]
    assert removed == ["-            per_month[category] = per_month.get(category, 0) + abs(amount)"]
    assert added == ["+            per_month[category] = per_month.get(category, 0) - abs(amount)"]


def test_split_that_changes_a_passing_test_is_rejected_and_the_function_debugged_whole(fixture_copy):
    root = fixture_copy("ledger")
    whole_fix = inlined()
    answers = [BAD_SPLIT, BAD_SPLIT, "[]", "[]", whole_fix]
    result = run_cli("fix", str(root), *MODEL, "--decompose", "--format", "json", env=mocks(*answers), timeout=300)
    report = json.loads(result.stdout)
    rejected = [c for c in report["candidates"] if c["iteration"] == 0]
    assert len(rejected) == 2 and not any(c["outcome"]["accepted"] for c in rejected)
    assert "test_comments_and_blank_lines_are_skipped" in rejected[0]["outcome"]["reason"]
    assert report["status"] == "fixed"
    assert any("no split of monthly_report behaved like the original" in w for w in report["warnings"])


def test_short_function_is_not_decomposed(fixture_copy):
    root = fixture_copy("average")
    good = '''```python
def mean(values):
    """Arithmetic mean of a non-empty list of numbers."""
    total = 0
    for v in values:
        total += v
    return total / len(values)
```'''
    result = run_cli("fix", str(root), *MODEL, "--decompose", "--format", "json", env=mocks("[]", "[]", good))
    report = json.loads(result.stdout)
    assert report["status"] == "fixed"
    assert any("nothing decomposed: mean has" in w and "more than 40" in w for w in report["warnings"])


# --- a method ------------------------------------------------------------------------------------

def as_method(root):
    """The ledger fixture with monthly_report as a method of `Report`; the tests call it through an instance."""
    source = root / "ledger" / "report.py"
    text = source.read_text()
    head, function = text[:text.index("def monthly_report")], text[text.index("def monthly_report"):]
    function = function.replace('def monthly_report(lines, currency="EUR"):', 'def monthly_report(self, lines, currency="EUR"):')
    body = "".join("    " + line if line.strip() else line for line in function.splitlines(keepends=True))
    source.write_text(head + "class Report:\n" + body)
    tests = root / "tests" / "test_report.py"
    tests.write_text(tests.read_text().replace("from ledger.report import monthly_report",
                                               "from ledger.report import Report\n\nmonthly_report = Report().monthly_report"))
    return root


def method_of(function: str) -> str:
    """`function`'s def as a method: `self` first, the split's helpers called through `self`."""
    text = re.sub(r"^def (\w+)\(", r"def \1(self, ", function, flags=re.M)
    return text.replace("report_lines(totals_by_month(parse_entries(",
                        "self.report_lines(self.totals_by_month(self.parse_entries(")


METHOD_SPLIT = ("```python\nclass Report:\n" + "\n\n".join(
    "".join("    " + l if l.strip() else l for l in method_of(f).splitlines(keepends=True))
    for f in (PARSE, TOTALS_BUGGY, LINES, MAIN)) + "```")


def test_a_long_method_is_split_into_methods_of_its_class_and_fixed_there(fixture_copy):
    root = as_method(fixture_copy("ledger"))
    answers = [METHOD_SPLIT, RIGHT, TOTALS_WRONG, "[]", "[]", "```python\n" + method_of(TOTALS_FIXED) + "```"]
    result = run_cli("fix", str(root), *MODEL, "--decompose", "--format", "json", env=mocks(*answers), timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "fixed", report
    split = report["candidates"][0]
    assert split["outcome"]["accepted"], split
    assert "split into parse_entries, totals_by_month, report_lines" in split["outcome"]["reason"]
    assert report["hierarchy"]["prime"] == "ledger/report.py::Report.totals_by_month"
    assert "+    def totals_by_month(self, entries):" in report["diff"]
    assert "+                per_month[category] = per_month.get(category, 0) - abs(amount)" in report["diff"]
    assert "+        return self.report_lines(self.totals_by_month(self.parse_entries(lines)), currency)" in report["diff"]


def test_keep_structure_carries_a_methods_fix_back_into_the_original_method(fixture_copy):
    root = as_method(fixture_copy("ledger"))
    text = (root / "ledger" / "report.py").read_text()
    method = textwrap.dedent(text[text.index("    def monthly_report"):])
    inlined_method = "```python\nclass Report:\n" + textwrap.indent(method.replace("+ abs(amount)", "- abs(amount)"),
                                                                      "    ") + "```"
    answers = [METHOD_SPLIT, RIGHT, TOTALS_WRONG, "[]", "[]", "```python\n" + method_of(TOTALS_FIXED) + "```",
               inlined_method]
    log = root.parent / "prompts.jsonl"
    result = run_cli("fix", str(root), *MODEL, "--decompose", "--keep-structure",
                     env=dict(mocks(*answers), TRACEFIX_LOG_PATH=str(log)), timeout=300)
    assert result.returncode == 0, result.stderr
    removed = [l for l in result.stdout.splitlines() if l.startswith("-") and not l.startswith("---")]
    added = [l for l in result.stdout.splitlines() if l.startswith("+") and not l.startswith("+++")]
    assert removed == ["-                per_month[category] = per_month.get(category, 0) + abs(amount)"]
    assert added == ["+                per_month[category] = per_month.get(category, 0) - abs(amount)"]
    # The inline prompt showed the fixed split as the class's methods.
    inline = [json.loads(line) for line in log.read_text().splitlines() if json.loads(line)["purpose"] == "inline"]
    shown = inline[0]["messages"][-1]["content"]
    assert "class Report:\n    def parse_entries(self, lines):" in shown
    assert "    def monthly_report(self, lines, currency=\"EUR\"):" in shown
