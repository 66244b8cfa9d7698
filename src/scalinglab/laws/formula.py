"""Laws written as formulas: parsed safely, differentiated symbolically, fitted like the built-ins.

``Law.from_formula("E + A*N**-alpha + B*D**-beta", inputs=("N", "D"))`` turns user text into a
:class:`~scalinglab.laws.base.Law` with a fitting parametrisation, starting grid and
identifiability rule, so it goes through the one fitting engine (multi-start, bootstrap,
holdout) like any catalogue law.

Safety: the text is never evaluated. Python's ``ast`` parses it (``mode="eval"``) and a
whitelist walks the tree: numbers, the declared input and parameter names (and definitions),
``+ - * / **`` (``^`` is read as ``**``), unary minus, and the functions ``exp``, ``log``,
``sqrt``, ``min``, ``max``, ``abs``, ``tanh``, ``sigmoid``, ``softplus``, ``log10`` and
``clip(x, lo, hi)``. Anything else (attributes, subscripts, calls of other
names, keywords, comparisons, strings, lambdas, ...) is refused with the offending piece named.
The whitelisted tree is built directly into a sympy expression (sympy's own parser, which calls
``eval``, is not used), differentiated with ``sympy.diff``, reduced with ``sympy.cse``, and
compiled into numpy closures by :func:`compile_expressions`, again without ``eval``/``exec``.

In fitting coordinates a parameter that only scales (never appears in an exponent or inside
``exp``) is fitted as its logarithm, as the LSE form does for Chinchilla's E, A and B: positivity
is automatic and scales spanning decades are well conditioned. The others (exponents,
smoothness) are fitted as they are. :class:`FormulaLog` evaluates ``log f`` and its gradient
for a batch of parameter vectors.
"""

from __future__ import annotations

import ast
import itertools
import keyword
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp
from scipy import special

from scalinglab.errors import ParameterError, did_you_mean

if TYPE_CHECKING:
    from scalinglab.laws.base import Law



class sigmoid(sp.Function):
    """``1 / (1 + exp(-x))``, kept whole so it is evaluated stably (``scipy.special.expit``)."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)


class softplus(sp.Function):
    """``log(1 + exp(x))``, kept whole so it is evaluated stably (``numpy.logaddexp(0, x)``):
    written out, it overflows for x > 709 and loses every digit for x < -37."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])


def _clip(x: sp.Expr, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    return sp.Min(sp.Max(x, lo), hi)


#: the functions a formula may call, and their sympy counterparts
FUNCTIONS: dict[str, Callable[..., sp.Expr]] = {
    "exp": sp.exp, "log": sp.log, "ln": sp.log, "sqrt": sp.sqrt, "min": sp.Min, "max": sp.Max,
    "abs": sp.Abs, "tanh": sp.tanh, "sigmoid": sigmoid, "softplus": softplus,
    "log10": lambda x: sp.log(x) / sp.log(10), "clip": _clip,
}
#: how many arguments each function takes (min and max take two or more)
_ARITY = {"clip": 3}
#: longest formula accepted, and most syntax nodes (bounds the work one formula can ask for)
MAX_LENGTH = 8000
MAX_NODES = 3000
#: deepest nesting accepted (calls, powers, signs, brackets; a chain of ``+ -`` or of ``* /`` is
#: one level however long, being read as one sum or product). Deeper trees overflowed Python's
#: recursion in the parser, here or in sympy: ``N**N**...`` 700 deep and 3000 factors of
#: ``N*N*...`` were RecursionError, 7900 unary minuses a MemoryError from ``ast.parse``
MAX_DEPTH = 100
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

_BINOPS: dict[type, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def check_name(name: str, what: str = "name") -> str:
    """A name a formula may declare: a letter, then letters, digits or ``_``; not a keyword or a
    function name."""
    name = str(name).strip()
    if not _NAME.match(name) or keyword.iskeyword(name) or name in FUNCTIONS:
        raise ParameterError(f"{what} {name!r} is not a valid name (a letter, then letters, digits "
                             f"or _; not a Python keyword nor one of {sorted(FUNCTIONS)})", "formula")
    return name


def _strip_output(text: str) -> str:
    """``"L = E + ..."`` -> ``"E + ..."``: an output name on the left is allowed and dropped."""
    m = re.match(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=(?!=)(.*)$", text, flags=re.S)
    return m.group(1) if m else text


def names_in(text: str) -> list[str]:
    """Names a formula uses, in order of first appearance (functions excluded); refuses what the
    whitelist refuses."""
    tree = _parse_tree(text)
    seen: list[str] = []
    for node in _source_order(tree):
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS and node.id not in seen:
            seen.append(node.id)
    return seen


def _source_order(tree: ast.AST) -> list[ast.AST]:
    nodes = [n for n in ast.walk(tree) if hasattr(n, "col_offset")]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def _parse_tree(text: str) -> ast.Expression:
    if not isinstance(text, str):
        raise ParameterError(f"the formula must be text, not {type(text).__name__}", "formula")
    if not text.strip():
        raise ParameterError("the formula is empty", "formula")
    if len(text) > MAX_LENGTH:
        raise ParameterError(f"the formula is longer than {MAX_LENGTH} characters", "formula")
    body = _strip_output(text).replace("^", "**")
    try:
        tree = ast.parse(body.strip(), mode="eval")
    except SyntaxError as exc:
        raise ParameterError(f"formula {text!r} is not arithmetic: {exc.msg}", "formula") from None
    except (RecursionError, MemoryError):  # CPython's parser gives up on deep nesting this way
        raise ParameterError(f"the formula is nested more than {MAX_DEPTH} deep", "formula") from None
    for count, node in enumerate(ast.walk(tree), start=1):
        if count > MAX_NODES:
            raise ParameterError(f"the formula has more than {MAX_NODES} parts", "formula")
        _check_node(node, text)
    if _depth(tree) > MAX_DEPTH:
        raise ParameterError(f"the formula is nested more than {MAX_DEPTH} deep", "formula")
    return tree


_SUMS = (ast.Add, ast.Sub)
_PRODUCTS = (ast.Mult, ast.Div)


def _same_chain(parent: ast.AST, child: ast.AST) -> bool:
    """Is ``child`` the left operand of ``parent`` in one chain of ``+ -`` or of ``* /``?
    (``a + b - c`` parses as ``(a + b) - c``: one sum, read by :func:`_chain` without recursion.)"""
    if not (isinstance(parent, ast.BinOp) and isinstance(child, ast.BinOp) and child is parent.left):
        return False
    return any(isinstance(parent.op, ops) and isinstance(child.op, ops) for ops in (_SUMS, _PRODUCTS))


def _depth(tree: ast.AST) -> int:
    """Nesting depth of a checked tree, counted without recursion; a chain of ``+ -`` or of
    ``* /`` counts once (see :data:`MAX_DEPTH`)."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.expr_context, ast.operator, ast.unaryop)):
                continue
            stack.append((child, depth if _same_chain(node, child) else depth + 1))
    return deepest


def _chain(node: ast.BinOp) -> tuple[ast.AST, list[tuple[ast.operator, ast.AST]]]:
    """``a + b - c`` -> ``(a, [(Add, b), (Sub, c)])``: the operands of one chain, in order."""
    ops: list[tuple[ast.operator, ast.AST]] = []
    head = node
    while True:
        ops.append((head.op, head.right))
        if not _same_chain(head, head.left):
            return head.left, ops[::-1]
        head = head.left  # type: ignore[assignment]  # a BinOp: _same_chain checked it


def _check_node(node: ast.AST, text: str) -> None:
    ok = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, ast.Load,
          ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
    if not isinstance(node, ok):
        piece = ast.get_source_segment(_strip_output(text).replace("^", "**").strip(), node) \
            if hasattr(node, "col_offset") else type(node).__name__
        raise ParameterError(f"formula {text!r}: {piece or type(node).__name__!r} is not allowed; a "
                             "formula is arithmetic (+ - * / ** or ^) on numbers and declared "
                             f"names, with the functions {sorted(FUNCTIONS)}", "formula")
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool)
                                           or not isinstance(node.value, (int, float))):
        raise ParameterError(f"formula {text!r}: {node.value!r} is not a number", "formula")
    if isinstance(node, ast.Constant) and (node.value.bit_length() > 1023
                                           if isinstance(node.value, int)
                                           else not math.isfinite(node.value)):
        # past float's range (a 400-digit integer was an OverflowError when compiled)
        shown = (f"a {len(str(node.value))}-digit integer" if isinstance(node.value, int)
                 else str(node.value))
        raise ParameterError(f"formula {text!r}: {shown} is not a finite number", "formula")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = (f"{node.func.id}() is not a known function"
                      f"{did_you_mean(node.func.id, list(FUNCTIONS))}; "
                      if isinstance(node.func, ast.Name) else "")
            raise ParameterError(f"formula {text!r}: {called}only {sorted(FUNCTIONS)} may be called",
                                 "formula")
        if node.keywords or not node.args:
            raise ParameterError(f"formula {text!r}: call {node.func.id}(...) with plain arguments",
                                 "formula")
        arity = _ARITY.get(node.func.id, 1)
        if node.func.id in ("min", "max"):
            if len(node.args) < 2:
                raise ParameterError(f"formula {text!r}: {node.func.id} takes two or more arguments",
                                     "formula")
        elif len(node.args) != arity:
            raise ParameterError(f"formula {text!r}: {node.func.id} takes {arity} argument"
                                 f"{'s' if arity > 1 else ''}", "formula")
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        raise ParameterError(f"formula {text!r}: name {node.id!r} is not allowed", "formula")


def _to_sympy(node: ast.AST, symbols: Mapping[str, sp.Expr], text: str) -> sp.Expr:
    if isinstance(node, ast.Expression):
        return _to_sympy(node.body, symbols, text)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int) and abs(value) <= 10**6:
            return sp.Integer(value)
        return sp.Float(float(value))
    if isinstance(node, ast.Name):
        if node.id not in symbols:
            raise ParameterError(f"formula {text!r}: {node.id!r} is neither an input nor a "
                                 f"parameter{did_you_mean(node.id, list(symbols))} (declared: "
                                 f"{sorted(symbols)})", "formula")
        return symbols[node.id]
    if isinstance(node, ast.UnaryOp):
        arg = _to_sympy(node.operand, symbols, text)
        return -arg if isinstance(node.op, ast.USub) else arg
    if isinstance(node, ast.BinOp) and isinstance(node.op, (*_SUMS, *_PRODUCTS)):
        # one sum or product at once: sympy builds ``Add(*terms)`` as it would term by term,
        # without a recursion (or a re-flattening) per term
        first, rest = _chain(node)
        parts = [_to_sympy(first, symbols, text)]
        for op, operand in rest:
            value = _to_sympy(operand, symbols, text)
            parts.append(-value if isinstance(op, ast.Sub) else 1 / value if isinstance(op, ast.Div)
                         else value)
        return _real(sp.Add(*parts) if isinstance(node.op, _SUMS) else sp.Mul(*parts), node, text)
    if isinstance(node, ast.BinOp):
        left, right = _to_sympy(node.left, symbols, text), _to_sympy(node.right, symbols, text)
        if isinstance(node.op, ast.Pow) and left.is_Number and right.is_Number:
            # a power of two numbers is computed here, in floats: sympy would compute it exactly,
            # and 9**9**9**9 has more digits than the machine has memory
            try:
                value = float(left) ** float(right)
            except (OverflowError, ZeroDivisionError):
                value = float("inf")
            if isinstance(value, complex) or not np.isfinite(value):
                raise ParameterError(f"formula {text!r}: the constant {ast.unparse(node)} is not a "
                                     "finite real number", "formula")
            return sp.Float(value)
        return _real(_BINOPS[type(node.op)](left, right), node, text)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _real(FUNCTIONS[node.func.id](*(_to_sympy(a, symbols, text) for a in node.args)),
                     node, text)
    raise ParameterError(f"formula {text!r}: cannot read {type(node).__name__}", "formula")


#: what sympy makes of ``log(-1)``, ``sqrt(-1)``, ``x/0``, ``log(0)``: no real number a fit can use
_NOT_REAL = (sp.I, sp.zoo, sp.nan, sp.oo, -sp.oo)


def _real(value: sp.Expr, node: ast.AST, text: str) -> sp.Expr:
    """``value`` (built from ``node``) if it is real and finite where it is a constant; else a
    :class:`ParameterError` naming the piece. Sympy folds constants exactly, so ``log(-1)``
    came out as ``I*pi`` and was refused later as "cannot evaluate Pi in a formula", naming
    neither the formula nor the culprit, and ``exp(1000)`` overflowed to inf in every
    prediction. Only the top of ``value`` is looked at: its parts were checked when built."""
    bad = any(a in _NOT_REAL for a in (value, *value.args))
    if not bad and value.is_number:
        try:
            number = complex(value)
        except (TypeError, ValueError, OverflowError):
            bad = True
        else:
            bad = number.imag != 0 or not math.isfinite(number.real)
    if bad:
        raise ParameterError(f"formula {text!r}: {ast.unparse(node)} is not a finite real number",
                             "formula")
    return value


@dataclass(frozen=True)
class ParsedFormula:
    """A checked formula: its sympy expression over input and parameter symbols."""

    text: str
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    expr: sp.Expr
    symbols: Mapping[str, sp.Symbol]
    definitions: tuple[tuple[str, str], ...] = ()

    def in_exponent(self, name: str) -> bool:
        """Does the parameter appear in an exponent or inside exp()? (Then it is not a scale.)"""
        s = self.symbols[name]
        for node in sp.preorder_traversal(self.expr):
            if isinstance(node, sp.Pow) and node.exp.has(s):
                return True
            if isinstance(node, (sp.exp, sp.tanh, sigmoid, softplus)) and node.args[0].has(s):
                return True
        return False


#: the longest formula its definitions may expand to, in characters: 8 chained definitions each
#: using the one before twice (3.8k characters) fit in 13 s, 12 of them (61k) did not finish in
#: 2 minutes and 14 never did (the symbolic gradients of 2^14 copies); measured on 2 busy cores
MAX_EXPANDED_CHARS = 4_000


def _check_expansion(text: str, defs: Sequence[tuple[str, str]]) -> None:
    """Refuse definitions that expand the formula past :data:`MAX_EXPANDED_CHARS`, computed in
    linear time from how often each name occurs (nothing is substituted)."""
    sizes: dict[str, int] = {}

    def expanded(body: str) -> int:
        tree = _parse_tree(body)
        size = len(body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in sizes:
                size += sizes[node.id] + 2  # the definition in parentheses, for its name
        return size

    for name, body in defs:
        sizes[name] = expanded(body)
        if sizes[name] > MAX_EXPANDED_CHARS:
            break
    total = max([expanded(text), *sizes.values()])
    if total > MAX_EXPANDED_CHARS:
        raise ParameterError(f"formula {text!r}: its definitions expand it to over "
                             f"{MAX_EXPANDED_CHARS:,} characters ({total:,}); write a shorter "
                             "formula or fewer nested definitions", "formula")


def _name_list(names: Any, what: str) -> tuple[str, ...]:
    """``"N, D"`` or ``["N", "D"]`` -> ``("N", "D")``; anything else (a number, None) is a
    :class:`ParameterError` naming ``what``, where ``params="E,A,alpha"`` was read letter by
    letter and ``inputs=None`` was a TypeError."""
    if isinstance(names, str):
        return tuple(x.strip() for x in names.split(",") if x.strip())
    if isinstance(names, Mapping) or not isinstance(names, (Sequence, set, frozenset)) or \
            not all(isinstance(x, str) for x in names):
        raise ParameterError(f"{what} must be names (\"N, D\" or [\"N\", \"D\"]), not {names!r}", what)
    return tuple(names)


def parse_formula(
    text: str,
    inputs: Sequence[str],
    params: Sequence[str] | None = None,
    definitions: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
) -> ParsedFormula:
    """Check ``text`` and build its expression. ``params`` default to every other name, in order
    of first appearance. ``definitions`` (name -> formula, in order) are shorthands substituted
    into the formula, e.g. ``{"Dp": "U*(1 + R*(1 - exp(-RD/R)))"}``."""
    inputs = tuple(check_name(x, "input") for x in _name_list(inputs, "inputs"))
    if not inputs:
        raise ParameterError("a formula law needs at least one input", "inputs")
    defs = list(definitions.items()) if isinstance(definitions, Mapping) else list(definitions or [])
    def_names = [check_name(k, "definition") for k, _ in defs]
    if params is None:
        used: list[str] = []
        for body in [text, *(v for _, v in defs)]:
            used += [n for n in names_in(body) if n not in used]
        params = tuple(n for n in used if n not in inputs and n not in def_names)
    params = tuple(check_name(p, "parameter") for p in _name_list(params, "params"))
    clash = set(inputs) & set(params) or set(def_names) & (set(inputs) | set(params))
    if clash or len(set(params)) != len(params) or len(set(inputs)) != len(inputs):
        raise ParameterError(f"names must be distinct: inputs {list(inputs)}, parameters "
                             f"{list(params)}, definitions {def_names}", "formula")
    _check_expansion(text, defs)
    symbols: dict[str, Any] = {n: sp.Symbol(n, real=True) for n in (*inputs, *params)}
    for name, body in defs:
        symbols[name] = _to_sympy(_parse_tree(body), symbols, body)
    expr = _to_sympy(_parse_tree(text), symbols, text)
    free = {str(s) for s in expr.free_symbols}
    unused = [x for x in inputs if x not in free]
    if unused:
        # a misspelt input ('Nn', 'n') was taken for a parameter: name it
        hint = "".join(did_you_mean(x, list(params)).replace("did you mean", "is it") for x in unused)
        raise ParameterError(f"formula {text!r} does not use input(s) {unused}{hint}", "formula",
                             "inputs")
    idle = [p for p in params if p not in free]
    if idle:
        raise ParameterError(f"formula {text!r} does not use parameter(s) {idle}", "formula")
    plain = {n: symbols[n] for n in (*inputs, *params)}
    return ParsedFormula(text=text, inputs=inputs, params=params, expr=expr, symbols=plain,
                         definitions=tuple((k, str(v)) for k, v in defs))


# -- compiling sympy expressions into numpy closures ------------------------------------------

Env = dict[str, np.ndarray]
Fn = Callable[[Env], Any]


def _power(base: Fn, expo: Fn, base_expr: sp.Expr, exp_expr: sp.Expr, logged: frozenset[str]) -> Fn:
    if exp_expr.is_Number:
        e = float(exp_expr)
        if e == -1.0:
            return lambda env: 1.0 / base(env)
        if e == 0.5:
            return lambda env: np.sqrt(base(env))
        if e == 2.0:
            return lambda env: np.square(base(env))
        return lambda env: np.power(base(env), e)
    if base_expr.is_Symbol and str(base_expr) in logged:
        # x^e = exp(e ln x), ln x computed once per evaluation (for inputs, once per fit)
        key = f"log:{base_expr}"
        return lambda env: np.exp(expo(env) * env[key])
    return lambda env: np.power(base(env), expo(env))


def _compile(expr: sp.Expr, cache: dict[sp.Expr, Fn], logged: frozenset[str]) -> Fn:
    if expr in cache:
        return cache[expr]
    fn: Fn
    if expr.is_Symbol:
        name = str(expr)
        fn = lambda env, name=name: env[name]  # noqa: E731
    elif expr.is_Number:
        value = float(expr)
        fn = lambda env, value=value: value  # noqa: E731
    else:
        args = [_compile(a, cache, logged) for a in expr.args]
        head = expr.func
        if head is sp.Add:
            def fn(env: Env, args: list[Fn] = args) -> Any:
                total = args[0](env)
                for a in args[1:]:
                    total = total + a(env)
                return total
        elif head is sp.Mul:
            def fn(env: Env, args: list[Fn] = args) -> Any:
                total = args[0](env)
                for a in args[1:]:
                    total = total * a(env)
                return total
        elif head is sp.Pow:
            fn = _power(args[0], args[1], expr.args[0], expr.args[1], logged)
        elif head is sp.exp:
            fn = lambda env, a=args[0]: np.exp(a(env))  # noqa: E731
        elif head is sp.log:
            if expr.args[0].is_Symbol and str(expr.args[0]) in logged:
                key = f"log:{expr.args[0]}"
                fn = lambda env, key=key: env[key]  # noqa: E731
            else:
                fn = lambda env, a=args[0]: np.log(a(env))  # noqa: E731
        elif head in (sp.Min, sp.Max):
            # a chain of the binary ufunc (it broadcasts itself): reduce over broadcast_arrays
            # cost 14 us a call in broadcast_to alone, a fifth of lr/bsz sl_8's value and gradients
            op = np.minimum if head is sp.Min else np.maximum

            def fn(env: Env, args: list[Fn] = args, op: Any = op) -> Any:
                out = args[0](env)
                for a in args[1:]:
                    out = op(out, a(env))
                return out
        elif head is sp.tanh:
            fn = lambda env, a=args[0]: np.tanh(a(env))  # noqa: E731
        elif head is sigmoid:
            fn = lambda env, a=args[0]: special.expit(a(env))  # noqa: E731
        elif head is softplus:
            fn = lambda env, a=args[0]: np.logaddexp(0.0, a(env))  # noqa: E731
        elif head is sp.Abs:
            fn = lambda env, a=args[0]: np.abs(a(env))  # noqa: E731
        elif head is sp.sign:
            fn = lambda env, a=args[0]: np.sign(a(env))  # noqa: E731
        elif head is sp.Heaviside:
            fn = lambda env, a=args[0]: np.heaviside(a(env), 0.5)  # noqa: E731
        else:
            raise ParameterError(f"cannot evaluate {head.__name__} in a formula", "formula")
    cache[expr] = fn
    return fn


def compile_expressions(exprs: Sequence[sp.Expr], logged: Sequence[str]) -> Callable[[Env], list[Any]]:
    """``env -> [value of each expression]``, common subexpressions computed once (sympy's cse).

    ``env`` maps symbol names to arrays (they broadcast). For the names in ``logged`` (inputs
    and parameters) the logarithm is put in the env first, so ``x**p`` is ``exp(p ln x)`` with
    ``ln x`` shared by every term that raises ``x`` to a fitted power.
    """
    # cse names start with "_", which no user name may: they cannot clash
    replacements, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_t"),
                                   optimizations="basic")
    cache: dict[sp.Expr, Fn] = {}
    keys = frozenset(str(n) for n in logged)
    steps = [(str(sym), _compile(e, cache, keys)) for sym, e in replacements]
    finals = [_compile(e, cache, keys) for e in reduced]

    def run(env: Env) -> list[Any]:
        env = dict(env)
        for name in keys:
            if f"log:{name}" not in env and name in env:
                env[f"log:{name}"] = np.log(env[name])
        for name, fn in steps:
            env[name] = fn(env)
        return [f(env) for f in finals]

    return run


# -- the law ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormulaFn:
    """A parsed formula as a law's ``fn(inputs, params)`` (broadcasts over draws)."""

    parsed: ParsedFormula

    def __post_init__(self) -> None:
        run = compile_expressions([self.parsed.expr], (*self.parsed.inputs, *self.parsed.params))
        object.__setattr__(self, "_run", run)

    def __call__(self, x: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> np.ndarray:
        env = {k: np.asarray(x[k], dtype=float) for k in self.parsed.inputs}
        env |= {k: np.asarray(p[k], dtype=float) for k in self.parsed.params}
        shape = np.broadcast_shapes(*(np.shape(v) for v in env.values()))
        with np.errstate(all="ignore"):
            out = self._run(env)[0]  # type: ignore[attr-defined]
        return np.broadcast_to(np.asarray(out, dtype=float), shape).copy()


@dataclass(frozen=True)
class FormulaParametrisation:
    """The fitting parametrisation of a formula law: ``log f`` with logs of its scale parameters
    (``log_params``) as coordinates; calling it binds the runs' inputs (a :class:`FormulaLog`)."""

    parsed: ParsedFormula
    log_params: tuple[bool, ...]

    @property
    def _run(self) -> Callable[[Env], list[Any]]:
        """The value and gradients, compiled on first use: a law fitted on the linear scale
        (:mod:`scalinglab.fit.lsq`, which compiles its own basis) never needs them, and for a
        26-parameter law they took 0.9 CPU-s of a 5 s fit."""
        run = self.__dict__.get("_compiled")
        if run is None:
            grads = [sp.diff(self.parsed.expr, self.parsed.symbols[p]) for p in self.parsed.params]
            run = compile_expressions([self.parsed.expr, *grads], (*self.parsed.inputs, *self.parsed.params))
            object.__setattr__(self, "_compiled", run)
        return run

    def __call__(self, law: Law, inputs: Mapping[str, np.ndarray]) -> FormulaLog:
        return FormulaLog(law, self, inputs)


@dataclass
class _FormulaCtx:
    f: np.ndarray
    grads: list[Any]
    scale: list[Any]


class FormulaLog:
    """``log f(x; p)`` of a formula law and its gradient in fitting coordinates, batched.

    theta holds ``log p`` for scale parameters and ``p`` for the others. Where the formula is
    not positive (or not finite) the log-prediction is +inf, which the line search steps back
    from. Gradients are symbolic (``sympy.diff``), evaluated with the value's subexpressions.
    """

    def __init__(self, law: Law, spec: FormulaParametrisation, inputs: Mapping[str, np.ndarray]) -> None:
        self.law = law
        self.spec = spec
        self.log_params = spec.log_params
        names = spec.parsed.inputs
        self.env: Env = {}
        for k in names:
            v = np.asarray(inputs[k], dtype=float).ravel()[None, :]
            self.env[k] = v
            with np.errstate(all="ignore"):
                self.env[f"log:{k}"] = np.log(v)
        self.n = self.env[names[0]].shape[1]

    def prepare(self, theta: np.ndarray) -> np.ndarray:
        return theta  # nothing to share between blocks

    def forward(self, theta: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, _FormulaCtx]:
        return self.forward_rows(theta, slice(None), offset)

    def forward_rows(
        self, prep: np.ndarray, rows: slice, offset: np.ndarray | None = None,
    ) -> tuple[np.ndarray, _FormulaCtx]:
        theta = np.atleast_2d(prep)[rows]
        s = theta.shape[0]
        env = dict(self.env)
        scale: list[Any] = []
        for j, (name, is_log) in enumerate(zip(self.spec.parsed.params, self.log_params, strict=True)):
            col = theta[:, j : j + 1]
            if is_log:
                value = np.exp(col)
                env[name], env[f"log:{name}"] = value, col
                scale.append(value)
            else:
                env[name] = col
                scale.append(1.0)
        with np.errstate(all="ignore"):
            f, *grads = self.spec._run(env)  # type: ignore[attr-defined]
            f = np.broadcast_to(np.asarray(f, dtype=float), (s, self.n))
            good = np.isfinite(f) & (f > 0)
            lp = np.where(good, np.log(np.where(good, f, 1.0)), np.inf)
        if offset is not None:
            lp = lp - offset
        return lp, _FormulaCtx(f, grads, scale)

    def vjp(self, ctx: _FormulaCtx, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        s = weights.shape[0]
        if out is None:
            out = np.empty((s, len(ctx.grads)))
        with np.errstate(all="ignore"):
            r = weights / ctx.f
            rsum = None
            for j, (g, sc) in enumerate(zip(ctx.grads, ctx.scale, strict=True)):
                g = np.asarray(g, dtype=float)
                if g.ndim == 2 and g.shape[1] == self.n:
                    total = np.einsum("ij,ij->i", r, np.broadcast_to(g, r.shape))
                else:  # constant across runs: (S, 1) or a scalar
                    rsum = r.sum(axis=1) if rsum is None else rsum
                    total = rsum * np.broadcast_to(g, (s, 1))[:, 0] if g.ndim else rsum * float(g)
                out[:, j] = total * (sc[:, 0] if isinstance(sc, np.ndarray) else sc)
        return out


def default_log_params(parsed: ParsedFormula, bounds: Mapping[str, tuple[float, float]]) -> tuple[bool, ...]:
    """A parameter is fitted as its logarithm when it only scales (never in an exponent or
    inside exp) and its bounds, if given, are positive."""
    return tuple(not parsed.in_exponent(p) and bounds.get(p, (1.0, 1.0))[0] > 0
                 for p in parsed.params)


def formula_starts(law: Law, inputs: Mapping[str, np.ndarray], loss: np.ndarray,
                   budget: int = 2500) -> np.ndarray:
    """A grid of starts in fitting coordinates for a law that declares none of its own.

    Per parameter: between its bounds when they are finite (log-spaced for scale parameters);
    otherwise a scale parameter's log over [ln(min loss) - 3, 22] (Besiroglu et al.'s grid
    reaches e^25 for Chinchilla's A and B) and any other parameter over [0, 1.5] (exponents).
    About ``budget`` starts: ``k`` values per parameter with ``k^P <= budget``, 2 to 6.
    """
    model = law.log_model(inputs)
    p = len(law.param_names)
    k = int(min(6, max(2, np.floor(budget ** (1.0 / p) + 1e-9))))
    lo_loss = float(np.log(np.min(loss)))
    axes = []
    for name, is_log in zip(law.param_names, model.log_params, strict=True):
        lo, hi = law.bounds.get(name, (-np.inf, np.inf))
        if is_log:
            a = np.log(lo) if np.isfinite(lo) and lo > 0 else lo_loss - 3.0
            b = np.log(hi) if np.isfinite(hi) else 22.0
        else:
            a = lo if np.isfinite(lo) else 0.0
            b = hi if np.isfinite(hi) else 1.5
        if np.isfinite(lo) and np.isfinite(hi):  # inside open bounds, not on them
            a, b = a + (b - a) / (2 * k), b - (b - a) / (2 * k)
        axes.append(np.linspace(a, b, k))
    return np.array(list(itertools.product(*axes)))


def formula_law(
    formula: str,
    inputs: Sequence[str],
    params: Sequence[str] | None = None,
    *,
    name: str = "custom",
    output: str = "loss",
    bounds: Mapping[str, tuple[float, float]] | None = None,
    log_params: Mapping[str, bool] | None = None,
    definitions: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    exponents: Sequence[str] | None = None,
    law_type: type[Law] | None = None,
    **fields: Any,
) -> Law:
    """:meth:`Law.from_formula`: a fittable law from text (see the module docstring).

    ``law_type`` is the :class:`~scalinglab.laws.base.Law` class, handed in by
    ``Law.from_formula``: this module sits above ``laws.base`` and never imports it (no cycle)."""
    from scalinglab.laws.identify import DistinctInputs

    if law_type is None:
        raise TypeError("formula_law needs law_type (call Law.from_formula)")

    parsed = parse_formula(formula, inputs, params, definitions)
    bounds = {k: (float(v[0]), float(v[1])) for k, v in (bounds or {}).items()}
    unknown = [k for k in [*bounds, *(log_params or {})] if k not in parsed.params]
    if unknown:
        raise ParameterError(f"bounds or log_params name {unknown}, which are not parameters of "
                             f"{formula!r} (its parameters: {list(parsed.params)})", "bounds")
    for k, (lo, hi) in bounds.items():
        if not lo < hi:
            raise ParameterError(f"bounds of {k} must have lo < hi, not [{lo:g}, {hi:g}]", "bounds")
    logs = list(default_log_params(parsed, bounds))
    for k, v in (log_params or {}).items():
        logs[parsed.params.index(k)] = bool(v)
    for k, is_log in zip(parsed.params, logs, strict=True):
        if is_log and k in bounds and bounds[k][0] < 0:
            raise ParameterError(f"{k} is fitted as a logarithm, so its bounds must be >= 0", "bounds")
    text = _strip_output(formula).strip()
    definition = {"kind": "formula", "formula": formula, "inputs": list(parsed.inputs),
                  "params": list(parsed.params), "output": output,
                  "bounds": {k: list(v) for k, v in bounds.items()},
                  "log_params": dict(zip(parsed.params, logs, strict=True)),
                  "definitions": [list(d) for d in parsed.definitions]}
    fields.setdefault("starts", None)
    fields.setdefault("identifiability", DistinctInputs(3))
    law = law_type(
        name=name, formula=f"{output} = {text}" if not re.match(r"^\s*\w+\s*=(?!=)", formula)
        else formula.strip(),
        inputs=parsed.inputs, output=output, param_names=parsed.params, fn=FormulaFn(parsed),
        bounds=bounds, parametrisation=FormulaParametrisation(parsed, tuple(logs)),
        exponents=tuple(exponents) if exponents is not None else
        tuple(p for p, lg in zip(parsed.params, logs, strict=True) if not lg),
        definition=definition, **fields,
    )
    if law.starts is None:
        law = law.renamed(law.name, starts=_FormulaStarts(law))
    return law


@dataclass(frozen=True)
class _FormulaStarts:
    """The default grid (:func:`formula_starts`) bound to its law, as a ``StartGrid``."""

    law: Any

    def __call__(self, inputs: Mapping[str, np.ndarray], loss: np.ndarray) -> np.ndarray:
        return formula_starts(self.law, inputs, loss)
