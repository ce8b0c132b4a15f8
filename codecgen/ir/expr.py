"""Expressions over earlier fields: one translator base, one evaluator.

Every target turns an ``Expr`` into its own text by subclassing ``ExprTranslator`` and
giving the five hooks (``lit``, ``ref``, ``len_of``, ``binop``, ``unop``); a target that
forgets one cannot be instantiated.  ``evaluate`` is the one interpreter (64-bit-free
Python integers, floor division, shifts below 64) used wherever codecgen computes an
expression's value itself (random frames, fuzz spans).
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from typing import Callable, Generic, TypeVar

from codecgen.ir.nodes import DIRECTION_PATH, BinOp, Expr, LenOf, Lit, Path, Ref, UnOp, dotted

T = TypeVar("T")

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
LOGICAL = ("and", "or")
BITWISE = ("&", "|", "^")


class ExprTranslator(ABC, Generic[T]):
    """``Expr`` -> a target's representation; ``self(e)`` dispatches on the expression kind."""

    def __call__(self, e: Expr) -> T:
        if isinstance(e, Lit):
            return self.lit(e)
        if isinstance(e, Ref):
            return self.ref(e)
        if isinstance(e, LenOf):
            return self.len_of(e)
        if isinstance(e, BinOp):
            return self.binop(e)
        if isinstance(e, UnOp):
            return self.unop(e)
        raise TypeError(e)

    @abstractmethod
    def lit(self, e: Lit) -> T: ...

    @abstractmethod
    def ref(self, e: Ref) -> T: ...

    @abstractmethod
    def len_of(self, e: LenOf) -> T: ...

    @abstractmethod
    def binop(self, e: BinOp) -> T: ...

    @abstractmethod
    def unop(self, e: UnOp) -> T: ...


class _Refs(ExprTranslator[list]):
    def lit(self, e):
        return []

    def ref(self, e):
        return [e.path]

    len_of = ref

    def binop(self, e):
        return self(e.lhs) + self(e.rhs)

    def unop(self, e):
        return self(e.operand)


class _Text(ExprTranslator[str]):
    def lit(self, e):
        return str(e.value)

    def ref(self, e):
        return dotted(e.path)

    def len_of(self, e):
        return f"len({dotted(e.path)})"

    def binop(self, e):
        return f"({self(e.lhs)} {e.op} {self(e.rhs)})"

    def unop(self, e):
        return f"{e.op}{self(e.operand)}"


def expr_refs(expr: Expr) -> list[Path]:
    """Paths an expression reads (Ref and LenOf), in order of appearance."""
    return _Refs()(expr)


def uses_direction(expr: Expr) -> bool:
    return DIRECTION_PATH in expr_refs(expr)


def expr_text(expr: Expr) -> str:
    """Human-readable form, used by ``codecgen check`` and in comments."""
    return _Text()(expr)


class EvalError(ArithmeticError):
    """The expression has no value (division by zero, a negative or 64+ bit shift)."""


def _shl(a: int, b: int) -> int:
    if not 0 <= b < 64:
        raise EvalError(f"shift by {b}")
    return a << b


def _shr(a: int, b: int) -> int:
    if b < 0:
        raise EvalError(f"shift by {b}")
    return a >> b


_BINARY: dict[str, Callable[[int, int], object]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
    "%": operator.mod, "&": operator.and_, "|": operator.or_, "^": operator.xor,
    "<<": _shl, ">>": _shr, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "and": lambda a, b: bool(a) and bool(b), "or": lambda a, b: bool(a) or bool(b),
}
_UNARY: dict[str, Callable[[int], object]] = {"-": operator.neg, "~": operator.invert,
                                               "not": operator.not_}


def evaluate(expr: Expr, leaf: Callable[[Ref | LenOf], int]) -> int:
    """The value of ``expr``; ``leaf`` gives a ``Ref``'s value or a ``LenOf``'s length
    (it may raise to say the value is unknown). Raises ``EvalError`` where the expression
    has no value."""
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, (Ref, LenOf)):
        return leaf(expr)
    if isinstance(expr, UnOp):
        return int(_UNARY[expr.op](evaluate(expr.operand, leaf)))
    a, b = evaluate(expr.lhs, leaf), evaluate(expr.rhs, leaf)
    try:
        return int(_BINARY[expr.op](a, b))
    except ZeroDivisionError:
        raise EvalError(f"{expr.op} by zero") from None
