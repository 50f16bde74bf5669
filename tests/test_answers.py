from __future__ import annotations

import pytest

from tracefix.debugger.answers import (
    MalformedAnswer,
    RejectedCandidate,
    Verdict,
    check_rewrite,
    extract_code,
    function_from,
    parse_verdicts,
)
from tracefix.errors import InternalSignal, UserError

# --- verdicts -------------------------------------------------------------------------------------


def test_plain_json_list_gives_one_verdict_per_block():
    text = '[{"block": 1, "correct": true, "explanation": "sets i"}, {"block": 2, "correct": false, "explanation": "off by one"}]'
    assert parse_verdicts(text, [1, 2]) == [
        Verdict(block=1, correct=True, explanation="sets i"),
        Verdict(block=2, correct=False, explanation="off by one"),
    ]


def test_verdicts_object_inside_a_json_fence_with_prose_around_it():
    text = (
        "Let me look at each block.\n\n```json\n"
        '{"verdicts": [{"block": 3, "correct": false, "explanation": "the loop stops early"}]}\n'
        "```\nSo block 3 is the culprit."
    )
    assert parse_verdicts(text, [1, 2, 3]) == [Verdict(block=3, correct=False, explanation="the loop stops early")]


def test_trailing_commas_python_literals_and_single_quotes_are_tolerated():
    text = "Verdicts: [{'block': 1, 'correct': True, 'explanation': \"it's fine\",}, {'block': 2, 'correct': False,},]"
    verdicts = parse_verdicts(text, [1, 2])
    assert [(v.block, v.correct) for v in verdicts] == [(1, True), (2, False)]
    assert verdicts[0].explanation == "it's fine"


def test_block_ids_are_matched_loosely_and_returned_as_given():
    text = '[{"block": "2", "correct": "yes"}, {"block_id": "block 3", "verdict": "incorrect", "reason": "wrong sum"}]'
    verdicts = parse_verdicts(text, [2, 3])
    assert verdicts == [Verdict(2, True, ""), Verdict(3, False, "wrong sum")]
    assert isinstance(verdicts[0].block, int)


def test_string_block_ids_are_supported():
    text = '[{"block": "f:B2", "correct": false, "explanation": "x"}]'
    assert parse_verdicts(text, ["f:B1", "f:B2"]) == [Verdict("f:B2", False, "x")]


def test_items_naming_unknown_blocks_or_without_a_boolean_are_dropped():
    text = (
        '[{"block": 1, "correct": true}, {"block": 99, "correct": false},'
        ' {"block": 2, "correct": "perhaps"}, {"block": 1, "correct": false}]'
    )
    assert parse_verdicts(text, [1, 2]) == [Verdict(1, True, "")]  # the repeated block 1 is ignored


def test_answer_with_only_invalid_items_says_what_was_wrong():
    with pytest.raises(MalformedAnswer, match="block 7 is not one of"):
        parse_verdicts('[{"block": 7, "correct": true}]', [1, 2])


@pytest.mark.parametrize("text", ["", "   \n", "I think block 2 is wrong.", "```json\n[{\"block\": 1, \"correct\": \n```"])
def test_garbage_or_empty_verdict_answers_are_malformed(text):
    with pytest.raises(MalformedAnswer) as info:
        parse_verdicts(text, [1, 2])
    assert isinstance(info.value, InternalSignal) and not isinstance(info.value, UserError)
    assert "\n" not in str(info.value)


def test_the_candidate_with_the_most_verdicts_wins_over_an_example_in_prose():
    text = (
        'Format was [{"block": 1, "correct": true}]. Here is my answer:\n'
        '[{"block": 1, "correct": false, "explanation": "a"}, {"block": 2, "correct": true, "explanation": "b"}]'
    )
    assert [v.correct for v in parse_verdicts(text, [1, 2])] == [False, True]


def test_a_list_cut_off_by_the_token_limit_keeps_its_complete_items():
    text = ('```json\n[\n  {"block": 0, "correct": true, "explanation": "starts at zero"},\n'
            '  {"block": 1, "correct": false, "explanation": "off by one"},\n  {"block": 2, "correct": tr')
    assert [(v.block, v.correct) for v in parse_verdicts(text, [0, 1, 2])] == [(0, True), (1, False)]


def test_an_item_cut_inside_its_explanation_is_kept_with_what_it_said():
    text = ('```json\n[\n  {"block": 0, "correct": false, "explanation": "The unit digit of 148 is 8, '
            'and \\"8 * 412 % 10\\" is')
    (verdict,) = parse_verdicts(text, [0])
    assert (verdict.block, verdict.correct) == (0, False)
    assert verdict.explanation.startswith('The unit digit of 148 is 8, and "8 * 412 % 10" is')
    text = '[{"block": 0, "correct": true, "explanation": "fine"}, {"block": 1, "correct": false, "expla'
    assert [(v.block, v.correct) for v in parse_verdicts(text, [0, 1])] == [(0, True)]


def test_verdicts_keyed_by_block_are_accepted():
    text = '{"1": {"correct": true, "explanation": "ok"}, "2": {"correct": false, "explanation": "bad"}}'
    assert parse_verdicts(text, [1, 2]) == [Verdict(1, True, "ok"), Verdict(2, False, "bad")]


# --- code -----------------------------------------------------------------------------------------

FIXED = "def add(a, b):\n    return a + b\n"


def test_code_is_taken_from_the_python_fence():
    text = f"The bug is the minus sign. Fixed:\n\n```python\n{FIXED}```\nThis now adds."
    assert extract_code(text) == FIXED


def test_the_last_parsing_python_fence_wins():
    text = f"First try:\n```python\ndef add(a, b):\n    return a - b\n```\nBetter:\n```python\n{FIXED}```"
    assert extract_code(text) == FIXED


def test_a_later_usage_example_does_not_replace_the_function():
    text = f"```python\n{FIXED}```\nUse it like this:\n```python\nprint(add(1, 2))\n```"
    assert extract_code(text) == FIXED


def test_a_broken_last_fence_falls_back_to_an_earlier_one_that_parses():
    text = f"```python\n{FIXED}```\nor maybe\n```python\ndef add(a, b)\n    return a+b\n```"
    assert extract_code(text) == FIXED


def test_untagged_fence_with_a_function_is_accepted_but_a_shell_line_is_not():
    assert extract_code(f"Run:\n```\npytest -q\n```\nFix:\n```\n{FIXED}```") == FIXED


def test_bare_code_answer_that_defines_a_function_is_accepted():
    assert extract_code(FIXED) == FIXED
    assert extract_code("Here is the corrected function:\n\n" + FIXED) == FIXED


def test_unterminated_fence_cut_off_by_max_tokens_still_yields_parsing_code():
    assert extract_code("```python\n" + FIXED) == FIXED


def test_empty_answer_is_malformed():
    with pytest.raises(MalformedAnswer, match="empty"):
        extract_code("  \n")


def test_prose_only_answer_is_malformed():
    with pytest.raises(MalformedAnswer, match="no Python code"):
        extract_code("The function should add instead of subtract.")


def test_bare_expression_is_not_taken_for_a_rewrite():
    with pytest.raises(MalformedAnswer, match="no Python code"):
        extract_code("a + b")


def test_code_that_does_not_parse_reports_the_line():
    text = "```python\ndef add(a, b):\n    return a +\n```"
    with pytest.raises(MalformedAnswer) as info:
        extract_code(text)
    message = str(info.value)
    assert "does not parse" in message and "line 2" in message and "return a +" in message
    assert "\n" not in message


def test_bare_code_that_does_not_parse_reports_the_line():
    with pytest.raises(MalformedAnswer, match=r"line 1: .*def add\(a, b"):
        extract_code("def add(a, b:\n    return a + b\n")


# --- functions and rewrites -----------------------------------------------------------------------

MODULE = """
def helper(x):
    return x

class Stack:
    def push(self, item, *, check=True):
        self.items.append(item)

def outer():
    def inner(y):
        return y
    return inner
"""


def test_function_from_finds_top_level_functions_and_methods():
    assert function_from(MODULE, "helper").name == "helper"
    method = function_from(MODULE, "Stack.push")
    assert method is not None and [a.arg for a in method.args.args] == ["self", "item"]
    assert function_from(MODULE, "outer.<locals>.inner").name == "inner"


def test_function_from_returns_none_for_missing_names():
    assert function_from(MODULE, "missing") is None
    assert function_from(MODULE, "push") is None  # a method is not a top-level function
    assert function_from(MODULE, "Other.push") is None  # nor is it found under another class


def test_method_answered_without_its_class_is_found():
    answer = "def push(self, item, *, check=True):\n    self.items.insert(0, item)\n"
    assert function_from(answer, "Stack.push").name == "push"


def test_the_last_definition_wins_as_at_runtime():
    code = "def f():\n    return 1\n\ndef f():\n    return 2\n"
    assert function_from(code, "f").lineno == 4


def test_rewrite_with_the_same_signature_is_accepted():
    check_rewrite(MODULE, "def push(self, item, *, check=False):\n    pass\n", "Stack.push")
    check_rewrite("def f(a, b=1):\n    return a\n", "def f(a: int, b=2) -> int:\n    return a + b\n", "f")


def test_renamed_function_is_rejected():
    with pytest.raises(RejectedCandidate, match="does not define f .*it defines g"):
        check_rewrite("def f(a):\n    return a\n", "def g(a):\n    return a\n", "f")


@pytest.mark.parametrize(
    "rewrite",
    [
        "def f(a, c=1):\n    pass\n",  # renamed parameter
        "def f(a, b=1, c=2):\n    pass\n",  # added parameter
        "def f(a, b):\n    pass\n",  # dropped a default
        "def f(a, *, b=1):\n    pass\n",  # positional became keyword-only
        "def f(a, b=1, *args):\n    pass\n",  # added *args
        "async def f(a, b=1):\n    pass\n",  # became a coroutine
    ],
)
def test_signature_changes_are_rejected(rewrite):
    with pytest.raises(RejectedCandidate, match="changes the signature of f") as info:
        check_rewrite("def f(a, b=1):\n    return a\n", rewrite, "f")
    assert "\n" not in str(info.value)


def test_signature_change_can_be_allowed_but_a_rename_cannot():
    check_rewrite("def f(a):\n    pass\n", "def f(a, b=0):\n    pass\n", "f", allow_signature_change=True)
    with pytest.raises(RejectedCandidate):
        check_rewrite("def f(a):\n    pass\n", "def g(a, b=0):\n    pass\n", "f", allow_signature_change=True)


def test_indented_method_source_is_accepted():
    original = "    def push(self, item):\n        self.items.append(item)\n"
    check_rewrite(original, "def push(self, item):\n    self.items.insert(0, item)\n", "Stack.push")
