"""Function-level edits: the named def changes, every other byte of the file stays."""

from __future__ import annotations

import re
import textwrap

import pytest

from tracefix.errors import InternalSignal, UserError
from tracefix.repair.patch import FileEdit, FunctionEdit, PatchError, apply_edit, apply_edits, replace_function

SOURCE = '''\
"""A module with a bit of everything."""
import os  # stdlib

# A constant people look at.
LIMIT  =  10   # odd spacing stays


def first(x):
    return x + 1  # off by one?


class Shapes:
    """Holds shapes."""

    # Area of a square; comment attached to the def.
    @staticmethod
    def area(side):
        """Return the area.

        Squares only.
        """
        return side * 2

    def perimeter(self, side):   # spacing kept
        return  side * 4


def outer(n):
    # before inner
    def inner(k):
        return k - 1
    return [inner(i) for i in range(n)]
'''


def _lines_outside(text: str, start: str, end: str) -> str:
    """The text with the lines from the one starting `start` up to (not including) `end` removed."""
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    return head + end + tail


def test_method_replacement_keeps_rest_of_file_byte_identical():
    new = replace_function(SOURCE, "Shapes.area", textwrap.dedent('''\
        def area(side):
            """Return the area.

            Squares only.
            """
            return side * side
        '''))
    assert "        return side * side\n" in new
    assert "return side * 2" not in new
    old_outside = _lines_outside(SOURCE, "        return side * 2\n", "    def perimeter")
    new_outside = _lines_outside(new, "        return side * side\n", "    def perimeter")
    assert new_outside == old_outside


def test_method_replacement_changes_only_the_changed_line():
    new = replace_function(SOURCE, "Shapes.area", 'def area(side):\n    """Return the area.\n\n'
                           '    Squares only.\n    """\n    return side * side\n')
    changed = [(a, b) for a, b in zip(SOURCE.splitlines(), new.splitlines()) if a != b]
    assert changed == [("        return side * 2", "        return side * side")]
    assert len(new.splitlines()) == len(SOURCE.splitlines())


def test_method_gets_the_target_indentation():
    new = replace_function(SOURCE, "Shapes.perimeter", "def perimeter(self, side):\n    total = side * 4\n"
                           "    return total\n")
    assert "    def perimeter(self, side):\n        total = side * 4\n        return total\n" in new
    compile(new, "m.py", "exec")


def test_original_decorator_kept_when_candidate_has_none():
    new = replace_function(SOURCE, "Shapes.area", "def area(side):\n    return side ** 2\n")
    assert "    # Area of a square; comment attached to the def.\n    @staticmethod\n    def area(side):\n" \
           "        return side ** 2\n" in new
    namespace: dict = {}
    exec(compile(new, "m.py", "exec"), namespace)
    assert namespace["Shapes"].area(3) == 9


def test_candidate_decorators_replace_the_originals():
    new = replace_function(SOURCE, "Shapes.area", "@classmethod\ndef area(cls, side):\n    return side ** 2\n")
    assert "    @classmethod\n    def area(cls, side):\n" in new
    assert "@staticmethod" not in new
    assert "    # Area of a square; comment attached to the def.\n    @classmethod\n" in new


def test_nested_function_replacement_keeps_surroundings():
    new = replace_function(SOURCE, "outer.<locals>.inner", "def inner(k):\n    return k\n")
    assert "    # before inner\n    def inner(k):\n        return k\n    return [inner(i) for i in range(n)]\n" in new
    assert new.replace("        return k\n", "        return k - 1\n", 1) == SOURCE


def test_top_level_function_replacement_keeps_trailing_comments_elsewhere():
    new = replace_function(SOURCE, "first", "def first(x):\n    return x\n")
    assert new == SOURCE.replace("    return x + 1  # off by one?\n", "    return x\n")


def test_indentation_follows_the_file_not_the_candidate():
    source = "class A:\n  def m(self):\n    return 1\n\n  def n(self):\n    return 2\n"
    new = replace_function(source, "A.m", "def m(self):\n    if True:\n        return 3\n")
    assert new == "class A:\n  def m(self):\n    if True:\n      return 3\n\n  def n(self):\n    return 2\n"


def test_crlf_file_keeps_crlf_newlines():
    source = "def f():\r\n    return 1\r\n\r\n\r\ndef g():\r\n    return 2\r\n"
    new = replace_function(source, "f", "def f():\n    x = 1\n    return x\n")
    assert new == "def f():\r\n    x = 1\r\n    return x\r\n\r\n\r\ndef g():\r\n    return 2\r\n"


def test_new_helper_and_import_are_added():
    new = replace_function(SOURCE, "Shapes.perimeter", textwrap.dedent('''\
        import math
        from os import path

        def _double(n):
            return 2 * n

        def perimeter(self, side):
            return _double(side) * 2 + math.floor(0)
        '''))
    assert new.startswith('"""A module with a bit of everything."""\nimport os  # stdlib\nimport math\n'
                          'from os import path\n\n# A constant people look at.\n')
    assert "\n\n\ndef _double(n):\n    return 2 * n\n\n\nclass Shapes:\n" in new
    namespace: dict = {}
    exec(compile(new, "m.py", "exec"), namespace)
    assert namespace["Shapes"]().perimeter(3) == 12


def test_imports_and_helpers_the_file_has_are_not_duplicated():
    new = replace_function(SOURCE, "first", "import os\n\ndef outer(n):\n    return []\n\n"
                           "def first(x):\n    return os.sep and x\n")
    assert new.count("import os") == 1
    assert new.count("def outer") == 1
    assert "    return [inner(i) for i in range(n)]\n" in new  # the file's outer is left alone


def test_import_into_file_without_imports_goes_after_docstring():
    source = '"""Doc."""\n\n\ndef f(p):\n    return p\n'
    new = replace_function(source, "f", "from pathlib import Path\n\ndef f(p):\n    return Path(p)\n")
    assert new == '"""Doc."""\nfrom pathlib import Path\n\n\ndef f(p):\n    return Path(p)\n'


def test_new_method_comes_with_candidate_class():
    new = replace_function(SOURCE, "Shapes.perimeter", textwrap.dedent('''\
        class Shapes:
            def _sides(self):
                return 4

            def perimeter(self, side):
                return side * self._sides()
        '''))
    assert ("        return side ** 2" not in new and
            "\n    def _sides(self):\n        return 4\n\n    def perimeter(self, side):\n"
            "        return side * self._sides()\n" in new)
    assert new.count("class Shapes") == 1
    namespace: dict = {}
    exec(compile(new, "m.py", "exec"), namespace)
    assert namespace["Shapes"]().perimeter(2) == 8


def test_docstring_follows_the_method_indentation():
    new = replace_function(SOURCE, "Shapes.area", 'def area(side):\n    """Return the area.\n\n'
                           '    Of squares.\n    """\n    return side * side\n')
    assert '        """Return the area.\n\n        Of squares.\n        """\n' in new


def test_missing_function_is_a_patch_error_naming_it():
    with pytest.raises(PatchError, match=r"function Shapes.volume not found in shapes.py"):
        replace_function(SOURCE, "Shapes.volume", "def volume(x):\n    return x\n", path="shapes.py")
    with pytest.raises(PatchError, match="not found"):
        replace_function(SOURCE, "area", "def area(x):\n    return x\n")  # a method, not a function


def test_patch_error_is_an_internal_signal_not_a_user_error():
    assert issubclass(PatchError, InternalSignal) and not issubclass(PatchError, UserError)


def test_unparsable_candidate_names_the_line():
    with pytest.raises(PatchError, match=re.escape("does not parse: line 2: 'return x +'")):
        replace_function(SOURCE, "first", "def first(x):\n    return x +\n")


def test_candidate_rejected_by_the_compiler_is_an_error():
    with pytest.raises(PatchError, match="not valid Python"):
        replace_function(SOURCE, "first", "def first(x):\n    nonlocal y\n    return x\n")


def test_candidate_without_the_function_is_an_error():
    with pytest.raises(PatchError, match="has no def first.*second"):
        replace_function(SOURCE, "first", "def second(x):\n    return x\n")


def test_same_named_defs_need_a_line():
    source = ("class T:\n    @property\n    def x(self):\n        return self._x\n\n"
              "    @x.setter\n    def x(self, value):\n        self._x = value\n")
    with pytest.raises(PatchError, match=r"defined 2 times .*lines 2, 6"):
        replace_function(source, "T.x", "def x(self, value):\n    self._x = int(value)\n")
    new = replace_function(source, "T.x", "def x(self, value):\n    self._x = int(value)\n", line=6)
    assert new == source.replace("self._x = value", "self._x = int(value)")


def test_apply_edit_writes_into_the_tree(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "shapes.py").write_text(SOURCE)
    apply_edit(tmp_path, FunctionEdit("pkg/shapes.py", "first", "def first(x):\n    return x\n"))
    assert (tmp_path / "pkg" / "shapes.py").read_text() == SOURCE.replace(
        "    return x + 1  # off by one?\n", "    return x\n")


def test_apply_edits_returns_new_texts_and_takes_whole_files(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    (tmp_path / "b.py").write_text("X = 1\n")
    edited = apply_edits(tmp_path, [FunctionEdit("a.py", "f", "def f():\n    return 2\n"),
                                    FileEdit("b.py", "X = 2\n")])
    assert edited == {"a.py": "def f():\n    return 2\n", "b.py": "X = 2\n"}
    assert (tmp_path / "b.py").read_text() == "X = 2\n"


def test_whole_file_edit_must_be_valid_python(tmp_path):
    (tmp_path / "b.py").write_text("X = 1\n")
    with pytest.raises(PatchError, match="not valid Python"):
        apply_edit(tmp_path, FileEdit("b.py", "X = = 2\n"))
    assert (tmp_path / "b.py").read_text() == "X = 1\n"


def test_edit_outside_the_tree_is_refused(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("def f():\n    return 1\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.py").symlink_to(outside)
    for path in ("../outside.py", str(outside), "link.py"):
        with pytest.raises(PatchError, match="refusing to edit"):
            apply_edit(root, FunctionEdit(path, "f", "def f():\n    return 2\n"))
    assert outside.read_text() == "def f():\n    return 1\n"
