"""Bounded value summaries: what a variable held, as a short string, whatever its size.

Every value recorded by the tracer passes through `summarize`, so no snapshot keeps a
reference to user objects (they would be mutated later, and would keep memory alive) and
none is larger than MAX_CHARS.
"""

from __future__ import annotations

import reprlib
import types
from itertools import islice

MAX_CHARS = 120  # a summary longer than this is cut with "..."
ATTR_DEPTH = 1  # object attributes are shown this many levels deep
MAX_ATTRS = 6
MAX_SPLIT_ATTRS = 12  # attributes of an object shown one a variable (see summarize_locals)
# Past this many items a container is summarized from its first items only: reprlib sorts a
# whole dict or set to show six of them (270 ms for a million keys), and a Counter's or
# OrderedDict's own repr writes every item (2.3 s), at every snapshot.
LARGE = 1000


class _Repr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2  # containers are shallow: a list of lists shows one inner level
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = 8
        self.maxdict = 6
        self.maxstring = 60
        self.maxlong = 40
        self.maxother = 80

    def repr1(self, x, level):
        # Items and attributes that are short scalars skip reprlib's dispatch (same text).
        kind = type(x)
        if kind in _SCALARS:
            text = _scalar(x, kind)
            if text is not None:
                return text
        return super().repr1(x, level)

    def repr_dict(self, x, level):
        return super().repr_dict(_head(x, self.maxdict), level)

    def repr_set(self, x, level):
        return super().repr_set(_head(x, self.maxset), level)

    def repr_frozenset(self, x, level):
        return super().repr_frozenset(_head(x, self.maxfrozenset), level)

    def repr_instance(self, obj: object, level: int) -> str:
        # Objects with the default repr say nothing useful ("<C object at 0x...>"): show
        # their attributes instead, to a small depth.
        cls = type(obj)
        if cls.__repr__ is object.__repr__ and hasattr(obj, "__dict__") and level > 0:
            return _attrs_repr(self, obj, level)
        try:
            if isinstance(obj, _CONTAINERS) and len(obj) > LARGE:  # Counter, OrderedDict, ...
                return f"{cls.__name__}({self.repr1(_head(obj, self.maxlist), level)})"
            text = repr(obj)
        except Exception as exc:  # a user __repr__ that raises must not stop the trace
            return f"<{cls.__name__}: repr failed: {type(exc).__name__}>"
        return _cut(text, self.maxother)


def _attrs_repr(r: _Repr, obj: object, level: int) -> str:
    try:
        items = list(vars(obj).items())
    except Exception:
        return f"<{type(obj).__name__}>"
    shown = ", ".join(f"{k}={r.repr1(v, level - 1)}" for k, v in items[:MAX_ATTRS])
    more = ", ..." if len(items) > MAX_ATTRS else ""
    return f"{type(obj).__name__}({shown}{more})"


_CONTAINERS = (dict, set, frozenset, list, tuple)


def _head(x, n: int):
    """`x` when small; else a plain container of its first n + 1 items (one more than shown,
    so the summary still ends with "...")."""
    if len(x) <= LARGE:
        return x
    if isinstance(x, dict):
        return dict(islice(x.items(), n + 1))
    for base in _CONTAINERS[1:]:
        if isinstance(x, base):
            return base(islice(x, n + 1))
    return x


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_REPR = _Repr()
_OPAQUE = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, types.MethodType)


# Types whose builtin repr is what reprlib would give when short; they are most of what a
# snapshot holds, and reprlib's dispatch costs several times the repr itself.
_SCALARS = frozenset({int, float, bool, type(None), complex, str})


def _scalar(value, kind) -> str | None:
    """repr(value) when it is what reprlib gives (short), else None."""
    if kind is str:
        if len(value) > _REPR.maxstring:
            return None
        text = repr(value)
        return text if len(text) <= _REPR.maxstring else None
    if kind is int and not -10**38 < value < 10**38:  # cut by reprlib; past 4300 digits repr raises
        return None
    text = repr(value)
    return text if len(text) <= _REPR.maxlong else None


def _flat(value, kind) -> str | None:
    """A short list or tuple of short scalars, as reprlib writes it, else None."""
    pieces = []
    for item in value:
        item_kind = type(item)
        text = _scalar(item, item_kind) if item_kind in _SCALARS else None
        if text is None:
            return None
        pieces.append(text)
    if kind is list:
        return _cut("[" + ", ".join(pieces) + "]", MAX_CHARS)
    return _cut("(" + ", ".join(pieces) + (",)" if len(pieces) == 1 else ")"), MAX_CHARS)


def summarize(value: object) -> str:
    """A bounded, side-effect-light string for `value`."""
    kind = type(value)
    if kind in _SCALARS:
        text = _scalar(value, kind)
        if text is not None:
            return text
    elif (kind is list or kind is tuple) and len(value) <= _REPR.maxlist:
        text = _flat(value, kind)
        if text is not None:
            return text
    if isinstance(value, _OPAQUE):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
        return f"<{type(value).__name__} {name}>"
    try:
        return _cut(_REPR.repr(value), MAX_CHARS)
    except Exception as exc:
        return f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"


def summarize_locals(f_locals: dict) -> dict[str, str]:
    """Summaries of a frame's variables, skipping modules, functions and classes (noise).

    An object shown by its attributes whose summary would be cut is shown one attribute a
    variable (`self.items`, `self.log`, ...): a change past the cut would otherwise be
    invisible, and each attribute gets the whole bound of its own."""
    out = {}
    for name, value in f_locals.items():
        if type(value) in _SCALARS:
            if name[:2] != "__":
                out[name] = summarize(value)
            continue
        if isinstance(value, (types.ModuleType, types.FunctionType, type)) or name.startswith("__"):
            continue
        text = summarize(value)
        if len(text) == MAX_CHARS and text.endswith("...") and _shown_by_attributes(value):
            out.update(_attribute_summaries(name, value))
        else:
            out[name] = text
    return out


def _shown_by_attributes(value: object) -> bool:
    return type(value).__repr__ is object.__repr__ and hasattr(value, "__dict__")


def _attribute_summaries(name: str, value: object) -> dict[str, str]:
    try:
        items = list(vars(value).items())
    except Exception:
        return {name: f"<{type(value).__name__}>"}
    return {f"{name}.{attr}": summarize(v) for attr, v in items[:MAX_SPLIT_ATTRS]}


def summarize_exception(exc: BaseException) -> str:
    return _cut(f"{type(exc).__name__}: {exc}", MAX_CHARS * 2)
