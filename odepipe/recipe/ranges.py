"""Declared parameter ranges: ``typing.Annotated[float, Range(gt=0)]`` in a signature.

A component states the valid range of each numeric parameter once, where the parameter is
declared; the recipe validator reads it (so a bad value is reported with every other problem
of the recipe, before anything is built) and :func:`checked` applies the same rules when the
class is constructed directly from Python. Constructors keep only what a range cannot say
(one parameter against another). Every float is also checked to be finite and every int to fit
in 64 bits, declared or not: ``nan <= 0`` is False, so NaN passes any comparison written by
hand, and ``torch.manual_seed(10**23)`` overflows.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
import typing
from typing import Annotated, Any, Callable, List, Literal, Optional, Tuple, TypeVar

from ..errors import DataError, ModelError, OdepipeError
from .shorten import short

EMPTY = inspect.Parameter.empty
#: the largest integer torch and numpy hold (int64); any int beyond it is refused
INT64 = 2**63 - 1
F = TypeVar("F", bound=Callable[..., None])


def _fmt(x: float) -> str:
    """A number as a recipe would spell it (``10``, ``0.001``, ``1e-06``)."""
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    if math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


@dataclasses.dataclass(frozen=True)
class Range:
    """The valid range of a numeric parameter, for recipes and plugin authors.

    Put it in the parameter's annotation; odepipe's validator reads it from the constructor's
    signature (or a config dataclass's field) and reports a value outside it with the dotted
    recipe key, the range and a fix::

        from typing import Annotated, Optional
        import odepipe
        from odepipe import Range, Width  # Width: a size, at least 1, and it must fit

        class MySolver(odepipe.Solver):
            @odepipe.checked  # optional: the same checks when built from Python
            def __init__(self, rtol: Annotated[float, Range(gt=0, le=1)] = 1e-3,
                         hidden_size: Width = 32,
                         step_size: Optional[Annotated[float, Range(gt=0)]] = None): ...

    ``solver.rtol=-1`` then fails validation with
    ``solver.rtol must be > 0 and <= 1, got -1.0; try solver.rtol=0.001`` (the default is
    the suggested fix; ``example`` gives one when the default is not a number).

    Args:
        ge, gt: lower bound, inclusive or exclusive (at most one of them).
        le, lt: upper bound, inclusive or exclusive (at most one of them). Give sizes an upper
            bound, so an absurd value (``1e9``) is refused before anything is allocated.
        example: a valid value to suggest when the parameter's default is not one.

    NaN and infinities are refused for every float parameter, and ints beyond 64 bits for
    every int parameter, with or without a Range;
    ``None`` passes when the annotation allows it (``Optional[...]``). Cross-field rules
    (one parameter against another) stay in the constructor, with messages that name each
    key (``data.n_total=150 is too short for data.n_observed=100``).
    """

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None
    example: Optional[float] = None

    def __post_init__(self) -> None:
        bounds = {
            k: v
            for k, v in (("ge", self.ge), ("gt", self.gt), ("le", self.le), ("lt", self.lt))
            if v is not None
        }
        if not bounds:
            raise TypeError("Range() needs at least one of ge, gt, le, lt")
        if (self.ge is not None and self.gt is not None) or (
            self.le is not None and self.lt is not None
        ):
            raise TypeError(f"Range{bounds}: give ge or gt, and le or lt, not both")
        for key, value in bounds.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise TypeError(f"Range({key}={value!r}): a bound is a finite number")
        low = self.ge if self.ge is not None else self.gt
        high = self.le if self.le is not None else self.lt
        if low is not None and high is not None and low >= high:
            raise TypeError(f"Range{bounds} holds no value")

    def contains(self, x: float) -> bool:
        return (
            (self.ge is None or x >= self.ge)
            and (self.gt is None or x > self.gt)
            and (self.le is None or x <= self.le)
            and (self.lt is None or x < self.lt)
        )

    def describe(self) -> str:
        """``'> 0'``, ``'>= 1 and <= 16384'``: the range as a message says it."""
        parts = [
            f"{op} {_fmt(v)}"
            for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if v is not None
        ]
        return " and ".join(parts)

    def inside(self) -> Optional[float]:
        """A value inside the range, for the suggested fix when nothing better is known."""
        if self.example is not None:
            return self.example
        low = self.ge if self.ge is not None else self.gt
        high = self.le if self.le is not None else self.lt
        if low is None:
            return high if self.le is not None else None
        if self.ge is not None:
            return low
        return low * 10 if low > 0 else (low + high) / 2 if high is not None else low + 1


# -- reading an annotation ---------------------------------------------------------------------
def strip_ranges(annotation: Any) -> Tuple[Any, List[Range]]:
    """(the annotation without Annotated, the Ranges it carried)."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        inner, ranges = strip_ranges(base)
        return inner, [m for m in meta if isinstance(m, Range)] + ranges
    return annotation, []


def _union_args(annotation: Any) -> Optional[Tuple[Any, ...]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is getattr(types, "UnionType", None):
        return typing.get_args(annotation)
    return None


def allows_none(annotation: Any) -> bool:
    annotation, _ = strip_ranges(annotation)
    args = _union_args(annotation)
    return annotation is type(None) or bool(args and any(allows_none(a) for a in args))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ranges_for(value: Any, annotation: Any) -> List[Range]:
    """The Ranges that apply to ``value`` under ``annotation`` (in a Union, those of the first
    numeric member that accepts it)."""
    base, ranges = strip_ranges(annotation)
    args = _union_args(base)
    if args is not None:
        for arg in args:
            inner, _ = strip_ranges(arg)
            if inner is int and isinstance(value, int) or inner is float and _is_number(value):
                return ranges + ranges_for(value, arg)
        return ranges
    return ranges


def literal_values(annotation: Any) -> Optional[Tuple[Any, ...]]:
    """The choices of a ``Literal[...]`` annotation (also inside Annotated), else None."""
    base, _ = strip_ranges(annotation)
    return typing.get_args(base) if typing.get_origin(base) is Literal else None


# -- the check ---------------------------------------------------------------------------------
def _as_yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return _fmt(value) if _is_number(value) else short(value)


def _fix(key: str, ranges: List[Range], default: Any, optional: bool) -> str:
    """``; try key=<valid value>``: the default when it is a valid number, else one from the
    range (its ``example``), and ``key=null`` where null is allowed."""
    candidates = [default] if default is not EMPTY else []
    candidates += [r.inside() for r in ranges]
    fixes = [
        f"{key}={_as_yaml(c)}"
        for c in candidates
        if _is_number(c) and math.isfinite(c) and all(r.contains(c) for r in ranges)
    ][:1]
    if optional:
        fixes.append(f"{key}=null")
    return f"; try {' or '.join(fixes)}" if fixes else ""


def suggested_fix(key: str, annotation: Any, default: Any = EMPTY) -> str:
    """``; try key=<valid value>`` for a number of this annotation (the default when valid),
    or "" where no number fits: the fix a type error of a numeric parameter ends with."""
    base, ranges = strip_ranges(annotation)
    numeric = [strip_ranges(a) for a in _union_args(base) or (base,)]
    numeric = [(b, r) for b, r in numeric if b in (int, float)]
    if not numeric:
        return ""
    return _fix(key, ranges or numeric[0][1], default, allows_none(annotation))


def range_problem(
    key: str, value: Any, annotation: Any, default: Any = EMPTY, shown: Any = EMPTY
) -> Optional[str]:
    """The message for a number outside its declared range or not finite, else None.

    Args:
        key: the dotted recipe key (``solver.rtol``).
        value: the value after type checking (``coerce``); non-numbers pass (other checks
            own them), and so does ``None``.
        default: the parameter's default, suggested as the fix when it is valid.
        shown: what the user wrote, when it differs from ``value`` (``'1e400'`` read as inf).
    """
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, float) and not math.isfinite(item):
                return f"{key}[{i}] must be a finite number, got {short(item)}"
        return None
    if not _is_number(value):
        return None
    ranges = ranges_for(value, annotation)
    finite = math.isfinite(value) if isinstance(value, float) else abs(value) <= INT64
    if finite and all(r.contains(value) for r in ranges):
        return None
    optional = allows_none(annotation)
    need = " and ".join(r.describe() for r in ranges)
    if not finite:
        kind = "a finite number" if isinstance(value, float) else "an integer of 64 bits"
        need = f"{kind} {need}".rstrip()
    need += " or null" if optional else ""
    got = short(value if shown is EMPTY else shown)
    return f"{key} must be {need}, got {got}{_fix(key, ranges, default, optional)}"


def literal_problem(key: str, value: Any, annotation: Any) -> Optional[str]:
    choices = literal_values(annotation)
    if choices is None or value in choices or value is None and allows_none(annotation):
        return None
    return f"{key}={short(value)} is not one of {', '.join(map(str, choices))}"


# -- the same rules for direct construction ----------------------------------------------------
def section_of(cls: type) -> str:
    """The recipe section of a stage class (``solver`` for a Solver), from its stage base."""
    from ..registry import KINDS

    by_base = {base: section for base, section in KINDS.values()}
    for klass in cls.__mro__:
        if klass.__module__ == "odepipe.stages" and klass.__name__ in by_base:
            return by_base[klass.__name__]
    return cls.__name__


#: a size parameter (units, channels, embedding width): at least 1, and small enough to
#: allocate; the annotation every shipped component uses for its widths
Width = Annotated[int, Range(ge=1, le=16_384)]

#: a number of stacked recurrent layers: at least 1, and few enough to build; what the shipped
#: recurrent encoders and decoders declare for ``num_layers``
Depth = Annotated[int, Range(ge=1, le=64)]


def _error_class(section: str) -> type:
    return DataError if section == "data" else ModelError


def checked(init: F) -> F:
    """Decorates a component's ``__init__`` so that building it from Python applies the
    declared :class:`Range` s, finiteness and ``Literal`` choices of its parameters, raising
    :class:`odepipe.ModelError` (:class:`odepipe.DataError` for a data source) with the
    messages a recipe would get. Recipes are checked by the validator without it; the
    signature (and so the recipe's parameters) is unchanged."""
    signature = inspect.signature(init)
    hints: List[Any] = []

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if not hints:
            try:
                hints.append(typing.get_type_hints(init, include_extras=True))
            except Exception:  # unresolvable annotations: nothing declared to check
                hints.append({})
        bound = signature.bind(self, *args, **kwargs)
        section = section_of(type(self))
        problems = []
        for param, value in list(bound.arguments.items())[1:]:
            annotation = hints[0].get(param, EMPTY)
            key = f"{section}.{param}"
            problem = literal_problem(key, value, annotation) or range_problem(
                key, value, annotation, signature.parameters[param].default
            )
            if problem:
                problems.append(problem)
        if problems:
            error: Callable[[str], OdepipeError] = _error_class(section)
            raise error("; ".join(problems))
        init(self, *args, **kwargs)

    return typing.cast(F, wrapper)
