"""Workflow parameters: the small arithmetic language of ``data/providers.yaml``.

A provider's workflow maps an effect's catalog params (``strength``, ``factor``, ``levels``…)
to the numbers its filter graph or frame transform needs, e.g.
``temperature: "6500 - 4000 * strength"``. Values are numbers or arithmetic expressions over
named inputs; nothing else is evaluated (no attribute access, no calls beyond a few math
functions), so the registry stays data, not code.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

Number = int | float


class ParamError(ValueError):
    """A workflow parameter could not be evaluated (unknown name, bad syntax, not a number)."""


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS: dict[str, Callable[..., Number]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "clamp": lambda x, lo, hi: max(lo, min(hi, x)),
}


def evaluate(expr: str | Number, names: Mapping[str, Any]) -> Number:
    """Value of one parameter.

    Args:
        expr: a number (returned as is) or an expression such as ``"1 - 0.3 * strength"``:
            numbers, names from ``names``, ``+ - * / // % **``, parentheses and
            ``min max abs round floor ceil clamp(x, lo, hi)``.
        names: values the expression may refer to (numeric ones only are usable).

    Returns:
        int or float.

    Raises:
        ParamError: syntax error, unknown name, non-numeric value, or a math error.
    """
    if isinstance(expr, bool):
        raise ParamError(f"{expr!r} is a boolean, not a number")
    if isinstance(expr, (int, float)):
        return expr
    try:
        tree = ast.parse(str(expr), mode="eval")
    except SyntaxError as exc:
        raise ParamError(f"cannot parse {expr!r}: {exc.msg}") from None
    try:
        return _eval(tree.body, names, str(expr))
    except (ArithmeticError, ValueError, TypeError) as exc:
        if isinstance(exc, ParamError):
            raise
        raise ParamError(f"{expr!r}: {exc}") from None


def _eval(node: ast.AST, names: Mapping[str, Any], src: str) -> Number:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            known = ", ".join(sorted(k for k, v in names.items() if _is_number(v))) or "none"
            raise ParamError(f"{src!r} uses unknown name {node.id!r} (known: {known})")
        value = names[node.id]
        if not _is_number(value):
            raise ParamError(f"{src!r}: {node.id} = {value!r} is not a number")
        return value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, names, src), _eval(node.right, names, src))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, names, src))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
        return _FUNCS[node.func.id](*(_eval(a, names, src) for a in node.args))
    raise ParamError(f"{src!r}: {type(node).__name__} is not allowed in a workflow parameter")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_syntax(expr: str | Number) -> None:
    """Reject an expression that can never evaluate (used when the registry is loaded).

    Raises:
        ParamError: syntax error or a construct outside the allowed arithmetic.
    """
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        return
    try:
        tree = ast.parse(str(expr), mode="eval")
    except SyntaxError as exc:
        raise ParamError(f"cannot parse {expr!r}: {exc.msg}") from None
    for node in ast.walk(tree.body):
        allowed = (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.Call, ast.Load, *_BINARY, *_UNARY)
        if not isinstance(node, allowed):
            raise ParamError(f"{expr!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and not _is_number(node.value):
            raise ParamError(f"{expr!r}: only numeric constants are allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            allowed_calls = ", ".join(sorted(_FUNCS))
            raise ParamError(f"{expr!r}: this call is not allowed (allowed: {allowed_calls})")


def resolve(exprs: Mapping[str, str | Number], names: Mapping[str, Any]) -> dict[str, Number]:
    """Evaluate a mapping of named parameters in order; later ones may use earlier ones.

    Args:
        exprs: parameter name → number or expression (YAML order is kept).
        names: the inputs (effect params, probed video facts).

    Returns:
        parameter name → value.

    Raises:
        ParamError: naming the parameter that failed.
    """
    scope = dict(names)
    out: dict[str, Number] = {}
    for key, expr in exprs.items():
        try:
            value = evaluate(expr, scope)
        except ParamError as exc:
            raise ParamError(f"parameter {key!r}: {exc}") from None
        out[key] = scope[key] = value
    return out


def format_number(value: Any) -> str:
    """A number as ffmpeg reads it: ints plainly, floats with up to 6 significant digits
    (enough for any filter option; avoids ``0.30000000000000004`` in command lines)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"
