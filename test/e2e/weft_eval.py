#!/usr/bin/env python3
"""A reference numpy interpreter for the weft-dialect text that `weft compile`
prints.

It is deliberately independent of the compiler: it does not link any weft
code and re-implements every op from the descriptions in
dialects/Weft/Weft.td.  Its purpose is to check, numerically, that import,
folding and fusion preserve the meaning of an ONNX model (see
check_against_ort.py).

Only the printed, generic-free form is understood: one op per line, the
custom assembly formats of Weft.td, plus `arith.constant` and `func.return`
(printed as `return`).  Values are computed in float64 (int64 / bool for
integer and i1 tensors) and every result is cast to the element type its
declaration names, so rounding to f32 happens after each op as it would on a
real f32 device.

Usage:
  python weft_eval.py MODULE.mlir --onnx MODEL.onnx --inputs in.npz \
      --outputs out.npz

Inputs in the npz are looked up by the `weft.name` of each @main argument
(falling back to `argN`); outputs are written under each result's
`weft.name` (falling back to `resultN`).  Weights (`weft.weight "NAME"`) are
the initializers of MODEL.onnx of that name (external data is loaded from the
model's directory by onnx.load).
"""

import argparse
import math
import re
import sys

import numpy as np

# ----------------------------------------------------------------------------
# Types
# ----------------------------------------------------------------------------

_DTYPES = {
    "f64": np.float64, "f32": np.float32, "f16": np.float16,
    "i64": np.int64, "i32": np.int32, "i16": np.int16, "i8": np.int8,
    "si64": np.int64, "si32": np.int32, "si16": np.int16, "si8": np.int8,
    "ui64": np.uint64, "ui32": np.uint32, "ui16": np.uint16, "ui8": np.uint8,
    "i1": np.bool_, "index": np.int64,
    # bf16 has no numpy type: it is held as float32 whose value has been
    # rounded to bf16 (see _round_bf16).
    "bf16": np.float32,
}


class TensorType:
    __slots__ = ("shape", "elem")

    def __init__(self, shape, elem):
        self.shape = tuple(shape)
        self.elem = elem

    @property
    def np_dtype(self):
        if self.elem not in _DTYPES:
            raise EvalError("unsupported element type '%s'" % self.elem)
        return np.dtype(_DTYPES[self.elem])

    @property
    def is_float(self):
        return self.elem in ("f64", "f32", "f16", "bf16")

    def __repr__(self):
        return "tensor<%s>" % "x".join([str(d) for d in self.shape] + [self.elem])


def parse_type(text):
    text = text.strip()
    m = re.fullmatch(r"tensor<([^<>]*)>", text)
    if not m:
        raise EvalError("expected a ranked tensor type, got '%s'" % text)
    parts = m.group(1).split("x")
    elem = parts[-1]
    try:
        shape = [int(p) for p in parts[:-1]]
    except ValueError:
        raise EvalError("dynamic or malformed shape in '%s'" % text)
    return TensorType(shape, elem)


class EvalError(Exception):
    pass


def _round_bf16(a):
    a = np.asarray(a, dtype=np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    # round to nearest even on the upper 16 bits
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), a, out)


def to_dtype(value, ty):
    """Cast a computed value to the declared type, checking the shape."""
    value = np.asarray(value)
    if tuple(value.shape) != ty.shape:
        raise EvalError("computed shape %s but the op declares %r"
                        % (tuple(value.shape), ty))
    dt = ty.np_dtype
    if dt == np.bool_:
        return value.astype(np.bool_)
    if np.issubdtype(dt, np.integer) and np.issubdtype(value.dtype, np.floating):
        value = np.trunc(value)
    with np.errstate(over="ignore", invalid="ignore"):
        out = value.astype(dt)
    if ty.elem == "bf16":
        out = _round_bf16(out)
    return out


# ----------------------------------------------------------------------------
# Low-level text helpers
# ----------------------------------------------------------------------------

_OPEN = {"(": ")", "[": "]", "{": "}", "<": ">"}
_CLOSE = {v: k for k, v in _OPEN.items()}


def split_top(text, sep):
    """Splits `text` on `sep` outside brackets and string literals."""
    out, depth, cur, i, in_str = [], 0, [], 0, False
    while i < len(text):
        c = text[i]
        if in_str:
            cur.append(c)
            if c == "\\":
                cur.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE and not (c == ">" and i > 0 and text[i - 1] == "-"):
            depth -= 1
        if depth == 0 and text.startswith(sep, i):
            out.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def split_types_section(body):
    """Splits an op body into (before, types) at the last top-level ' : '."""
    parts = split_top(body, " : ")
    if len(parts) < 2:
        raise EvalError("no type section in '%s'" % body)
    return " : ".join(parts[:-1]), parts[-1]


def split_attr_dict(text):
    """Splits a trailing top-level attribute dictionary off `text`."""
    text = text.rstrip()
    if not text.endswith("}"):
        return text, {}
    depth = 0
    in_str = False
    for i in range(len(text) - 1, -1, -1):
        c = text[i]
        if c == '"':
            in_str = not in_str
        if in_str:
            continue
        if c == "}":
            depth += 1
        elif c == "{":
            depth -= 1
            if depth == 0:
                return text[:i].rstrip(), parse_attr_dict(text[i:])
    raise EvalError("unbalanced attribute dictionary in '%s'" % text)


def parse_attr_dict(text):
    inner = text.strip()[1:-1].strip()
    attrs = {}
    if not inner:
        return attrs
    for entry in split_top(inner, ","):
        entry = entry.strip()
        if "=" not in entry:
            attrs[entry] = True  # unit attribute
            continue
        key, val = entry.split("=", 1)
        attrs[key.strip()] = parse_attr_value(val.strip())
    return attrs


def parse_attr_value(v):
    if v in ("true", "false"):
        return v == "true"
    m = re.fullmatch(r"array<i\d+(?::\s*(.*))?>", v, re.S)
    if m:
        body = (m.group(1) or "").strip()
        return [int(x) for x in body.split(",")] if body else []
    m = re.fullmatch(r"#weft\.\w+<(\w+)>", v)
    if m:
        return m.group(1)
    m = re.fullmatch(r"(\S+)\s*:\s*([a-z]+\d+)", v)
    if m:
        num, ty = m.groups()
        if ty.startswith("f"):
            if num.startswith("0x"):
                return _hex_float(num, ty)
            return float(num)
        return int(num, 0)
    m = re.fullmatch(r'"(.*)"', v, re.S)
    if m:
        return m.group(1)
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        pass
    raise EvalError("cannot parse attribute value '%s'" % v)


def _hex_float(tok, elem):
    bits = int(tok, 16)
    if elem == "f64":
        return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])
    if elem == "f32":
        return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])
    if elem == "f16":
        return float(np.array([bits], dtype=np.uint16).view(np.float16)[0])
    if elem == "bf16":
        return float(np.array([bits << 16], dtype=np.uint32).view(np.float32)[0])
    raise EvalError("hex float literal for %s" % elem)


def parse_int_list(text):
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise EvalError("expected an integer list, got '%s'" % text)
    body = text[1:-1].strip()
    return [int(x) for x in body.split(",")] if body else []


# ----------------------------------------------------------------------------
# Dense elements
# ----------------------------------------------------------------------------

def parse_dense(lit, ty):
    """Decodes the inside of `dense<...>` for tensor type `ty`."""
    lit = lit.strip()
    n = int(np.prod(ty.shape, dtype=np.int64))
    if lit.startswith('"0x') and lit.endswith('"'):
        raw = bytes.fromhex(lit[3:-1])
        return _decode_hex(raw, ty, n)
    if lit.startswith('"'):
        raise EvalError("string dense literal not supported")
    # Nested list or splat scalar.
    toks = re.findall(r"true|false|[-+]?0x[0-9A-Fa-f]+|"
                      r"[-+]?(?:inf|nan)|"
                      r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?|"
                      r"\(|\)", lit)
    if "(" in toks:
        raise EvalError("complex dense literal not supported")
    vals = [_scalar_token(t, ty) for t in toks]
    if lit.startswith("["):
        if len(vals) != n:
            raise EvalError("dense literal has %d values, type %r needs %d"
                            % (len(vals), ty, n))
        arr = np.array(vals, dtype=_work_dtype(ty)).reshape(ty.shape)
    else:
        if len(vals) != 1:
            raise EvalError("bad splat literal '%s'" % lit)
        arr = np.full(ty.shape, vals[0], dtype=_work_dtype(ty))
    return to_dtype(arr, ty)


def _work_dtype(ty):
    if ty.elem == "i1":
        return np.bool_
    if ty.is_float:
        return np.float64
    return np.int64 if ty.elem != "ui64" else np.uint64


def _scalar_token(t, ty):
    if t in ("true", "false"):
        return t == "true"
    if t.lower().lstrip("+-").startswith("0x"):
        if ty.is_float:
            neg = t.startswith("-")
            v = _hex_float(t.lstrip("+-"), ty.elem)
            return -v if neg else v
        return int(t, 16)
    if ty.is_float:
        return float(t)
    if ty.elem == "i1":
        return int(t) != 0
    return int(t)


def _decode_hex(raw, ty, n):
    elem = ty.elem
    if elem == "i1":
        if len(raw) == n:  # one byte per element
            arr = np.frombuffer(raw, dtype=np.uint8) != 0
        elif len(raw) == (n + 7) // 8:  # bit-packed, LSB first
            bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8),
                                 bitorder="little")
            arr = bits[:n] != 0
        elif len(raw) == 1:  # splat
            arr = np.full(n, raw[0] != 0)
        else:
            raise EvalError("i1 hex literal of %d bytes for %d elements"
                            % (len(raw), n))
        return arr.reshape(ty.shape)
    if elem == "bf16":
        u16 = np.frombuffer(raw, dtype="<u2")
        arr = (u16.astype(np.uint32) << 16).view(np.float32)
    else:
        arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[elem]).newbyteorder("<"))
    if arr.size == 1 and n != 1:
        arr = np.full(n, arr[0], dtype=arr.dtype)
    if arr.size != n:
        raise EvalError("hex literal has %d elements, type %r needs %d"
                        % (arr.size, ty, n))
    return arr.reshape(ty.shape).astype(ty.np_dtype)


# ----------------------------------------------------------------------------
# Module parsing
# ----------------------------------------------------------------------------

class Op:
    __slots__ = ("result", "name", "operands", "attrs", "in_types", "out_type",
                 "extra", "line", "lineno")

    def __init__(self, result, name, operands, attrs, in_types, out_type,
                 extra, line, lineno):
        self.result = result
        self.name = name
        self.operands = operands
        self.attrs = attrs
        self.in_types = in_types
        self.out_type = out_type
        self.extra = extra
        self.line = line
        self.lineno = lineno

    def __repr__(self):
        return "%s = %s (line %d)" % (self.result, self.name, self.lineno)


class Module:
    def __init__(self):
        self.args = []      # (ssa, TensorType, weft.name or None)
        self.results = []   # (TensorType, weft.name or None)
        self.ops = []
        self.returns = []   # ssa names


V = r"%[\w.$#-]+"  # an SSA value
_OP_LINE = re.compile(r"^\s*(" + V + r")\s*=\s*([a-z_]+\.[a-z_]+)\s*(.*?)\s*$")
_FUNC_LINE = re.compile(r"^\s*func\.func\s+(?:\w+\s+)?@([\w.$-]+)(\(.*)\{\s*$")


def _split_signature(sig):
    """'(args) -> results attributes {...} ' -> (args, results or None)."""
    depth = 0
    for i, c in enumerate(sig):
        if c in "([{<":
            depth += 1
        elif c in ")]}>" and not (c == ">" and sig[i - 1] == "-"):
            depth -= 1
            if depth == 0:
                args, rest = sig[1:i], sig[i + 1:].strip()
                break
    else:
        raise EvalError("cannot parse function signature '%s'" % sig)
    rest = re.sub(r"\s*attributes\s*\{.*\}\s*$", "", rest)
    if not rest:
        return args, None
    if not rest.startswith("->"):
        raise EvalError("cannot parse function results '%s'" % rest)
    return args, rest[2:].strip()

# Operand section of each op (the part before the attribute dict and the type
# section), per the assembly formats of Weft.td.
_BIN = re.compile(r"(%s), (%s)" % (V, V))
_UN = re.compile(r"(%s)" % V)
_FORMATS = {
    "binary": _BIN,
    "unary": _UN,
    "cmp": re.compile(r"<(\w+)>, (%s), (%s)" % (V, V)),
    "ternary": re.compile(r"(%s), (%s), (%s)" % (V, V, V)),
    "perm": re.compile(r"(%s), (\[[-\d,\s]*\])" % V),
    "slice": re.compile(r"(%s)\[(\[[-\d,\s]*\]) : (\[[-\d,\s]*\]) : "
                        r"(\[[-\d,\s]*\])\]" % V),
    "variadic": re.compile(r"((?:%s)(?:, %s)*)" % (V, V)),
    "index": re.compile(r"(%s)\[(%s)\]" % (V, V)),
    "reduce": re.compile(r"<(\w+)> (%s)" % V),
    "opt3": re.compile(r"(%s), (%s)(?:, (%s))?" % (V, V, V)),
    "linear": re.compile(r"(%s), (%s)(?:, (%s))?(?: residual (%s))?"
                         % (V, V, V, V)),
    "opt4": re.compile(r"(%s), (%s), (%s)(?:, (%s))?" % (V, V, V, V)),
}

_BINARY_OPS = {"add", "sub", "mul", "div", "pow", "max", "min", "and", "or"}
_UNARY_OPS = {"neg", "exp", "log", "erf", "tanh", "sigmoid", "sqrt",
              "reciprocal", "cos", "sin", "abs", "relu", "not", "silu", "gelu",
              "cumsum", "trilu", "softmax"}
# ops whose type section is `T` (SameOperandsAndResultType)
_SAME_TYPE_OPS = _UNARY_OPS | {"swiglu"}
_OP_FORMAT = dict(
    [(o, "binary") for o in _BINARY_OPS] +
    [(o, "unary") for o in _UNARY_OPS] +
    [("cmp", "cmp"), ("select", "ternary"), ("isnan", "unary"),
     ("cast", "unary"), ("swiglu", "binary"), ("reshape", "unary"),
     ("broadcast", "unary"), ("transpose", "perm"), ("tile", "perm"),
     ("slice", "slice"), ("concat", "variadic"), ("gather", "index"),
     ("gather_nd", "index"), ("gather_elements", "index"),
     ("embedding", "index"), ("reduce", "reduce"), ("layer_norm", "opt3"),
     ("rms_norm", "binary"), ("matmul", "binary"), ("linear", "linear"),
     ("rotary", "ternary"), ("attention", "opt4")])


def _parse_arg_list(text):
    out = []
    if not text.strip():
        return out
    for a in split_top(text, ","):
        m = re.fullmatch(r"\s*(%s)\s*:\s*(tensor<[^<>]*>)\s*(\{.*\})?\s*" % V, a, re.S)
        if not m:
            raise EvalError("cannot parse function argument '%s'" % a)
        attrs = parse_attr_dict(m.group(3)) if m.group(3) else {}
        out.append((m.group(1), parse_type(m.group(2)), attrs.get("weft.name")))
    return out


def _parse_result_list(text):
    if text is None:
        return []
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    out = []
    if not text.strip():
        return out
    for r in split_top(text, ","):
        m = re.fullmatch(r"\s*(tensor<[^<>]*>)\s*(\{.*\})?\s*", r, re.S)
        if not m:
            raise EvalError("cannot parse function result '%s'" % r)
        attrs = parse_attr_dict(m.group(2)) if m.group(2) else {}
        out.append((parse_type(m.group(1)), attrs.get("weft.name")))
    return out


def parse_module(text, func="main"):
    mod = Module()
    in_func = False
    found = False
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("//"):
            continue
        m = _FUNC_LINE.match(line)
        if m:
            if found:
                in_func = False
                continue
            if m.group(1) == func:
                in_func = found = True
                arg_text, res_text = _split_signature(m.group(2))
                mod.args = _parse_arg_list(arg_text)
                mod.results = _parse_result_list(res_text)
            continue
        if not in_func:
            continue
        if s.startswith("return") or s.startswith("func.return"):
            rest = s.split(None, 1)[1] if " " in s else ""
            vals = rest.split(" : ")[0] if rest else ""
            mod.returns = [v.strip() for v in vals.split(",") if v.strip()]
            in_func = False
            continue
        if s == "}":
            continue
        mod.ops.append(parse_op_line(line, lineno))
    if not found:
        raise EvalError("no func.func @%s in the module" % func)
    if len(mod.returns) != len(mod.results):
        raise EvalError("return has %d values, @%s declares %d results"
                        % (len(mod.returns), func, len(mod.results)))
    return mod


def parse_op_line(line, lineno):
    m = _OP_LINE.match(line)
    if not m:
        raise EvalError("line %d: cannot parse '%s'" % (lineno, line.strip()))
    result, name, body = m.groups()
    if name == "arith.constant":
        cm = re.fullmatch(r"dense<(.*)>\s*:\s*(tensor<[^<>]*>)", body, re.S)
        if not cm:
            raise EvalError("line %d: unsupported constant '%s'"
                            % (lineno, body[:200]))
        ty = parse_type(cm.group(2))
        return Op(result, name, [], {}, [], ty, cm.group(1), line, lineno)
    if not name.startswith("weft."):
        raise EvalError("line %d: op '%s' is not in the weft dialect"
                        % (lineno, name))
    mnem = name[len("weft."):]
    before, types = split_types_section(body)
    operands_text, attrs = split_attr_dict(before)
    if mnem == "weight":
        wm = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', operands_text.strip())
        if not wm:
            raise EvalError("line %d: bad weft.weight '%s'" % (lineno, body))
        wname = wm.group(1).encode().decode("unicode_escape")
        return Op(result, name, [], attrs, [], parse_type(types), wname,
                  line, lineno)
    fmt = _OP_FORMAT.get(mnem)
    if fmt is None:
        raise EvalError("line %d: unknown op '%s'" % (lineno, name))
    om = _FORMATS[fmt].fullmatch(operands_text.strip())
    if not om:
        raise EvalError("line %d: operands of %s do not match its assembly "
                        "format: '%s'" % (lineno, name, operands_text))
    groups = list(om.groups())
    extra = None
    if fmt in ("cmp", "reduce"):
        extra = groups.pop(0)
    elif fmt == "perm":
        extra = parse_int_list(groups.pop())
    elif fmt == "slice":
        extra = tuple(parse_int_list(g) for g in groups[1:])
        groups = groups[:1]
    elif fmt == "variadic":
        groups = [g.strip() for g in groups[0].split(",")]
    elif fmt == "linear":
        # The residual, when present, is the last operand (and type).
        extra = groups[3] is not None
    operands = [g for g in groups if g is not None]
    # Type section.
    if fmt == "variadic":  # functional-type(inputs, result)
        fm = re.fullmatch(r"\((.*)\)\s*->\s*(tensor<[^<>]*>)", types.strip())
        if not fm:
            raise EvalError("line %d: bad functional type '%s'" % (lineno, types))
        in_types = [parse_type(t) for t in split_top(fm.group(1), ",")]
        out_type = parse_type(fm.group(2))
    elif mnem in _SAME_TYPE_OPS:
        out_type = parse_type(types)
        in_types = [out_type] * len(operands)
    else:
        tm = split_top(types, " -> ")
        if len(tm) != 2:
            raise EvalError("line %d: expected 'types -> type' in '%s'"
                            % (lineno, types))
        operand_types = tm[0]
        if fmt == "linear" and extra:
            rt = split_top(operand_types, " residual ")
            if len(rt) != 2:
                raise EvalError("line %d: expected 'residual TYPE' in '%s'"
                                % (lineno, types))
            operand_types = rt[0] + ", " + rt[1]
        in_types = [parse_type(t) for t in split_top(operand_types, ",")]
        out_type = parse_type(tm[1])
    if len(in_types) != len(operands):
        raise EvalError("line %d: %d operands but %d operand types"
                        % (lineno, len(operands), len(in_types)))
    return Op(result, name, operands, attrs, in_types, out_type, extra,
              line, lineno)


# ----------------------------------------------------------------------------
# Op semantics
# ----------------------------------------------------------------------------

def _f(x):
    """Widens to the compute type: float64 for floats, int64/bool otherwise."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float64)
    return x


def _num(x):
    """As _f, but also turns bools into int64 for arithmetic."""
    x = _f(x)
    return x.astype(np.int64) if x.dtype == np.bool_ else x


_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(x):
    x = np.asarray(x, dtype=np.float64)
    return _erf(x) if x.size else x


def _int_div(a, b):
    # C-style truncating integer division (ONNX Div on integers).
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _binary(mnem, a, b):
    a, b = _num(a), _num(b)
    if mnem == "add":
        return a + b
    if mnem == "sub":
        return a - b
    if mnem == "mul":
        return a * b
    if mnem == "div":
        if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
            return _int_div(a, b)
        return np.asarray(a, np.float64) / b
    if mnem == "pow":
        if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
            return np.power(a.astype(np.float64), b)
        return np.power(np.asarray(a, np.float64), b)
    if mnem == "max":
        return np.maximum(a, b)
    if mnem == "min":
        return np.minimum(a, b)
    if mnem == "and":
        return np.logical_and(a != 0, b != 0)
    if mnem == "or":
        return np.logical_or(a != 0, b != 0)
    raise EvalError(mnem)


def gelu(x, approximate):
    x = _f(x)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) *
                                        (x + 0.044715 * x ** 3)))
    if approximate in (None, "none"):
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    raise EvalError("unknown gelu approximation '%s'" % approximate)


def sigmoid(x):
    x = _f(x)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))),
                    np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def _unary(mnem, x, attrs):
    if mnem == "not":
        return np.logical_not(np.asarray(x) != 0) if np.asarray(x).dtype == np.bool_ \
            else np.invert(np.asarray(x))
    x = _f(x)
    fns = {
        "neg": lambda v: -v, "exp": np.exp, "log": np.log, "erf": erf,
        "tanh": np.tanh, "sigmoid": sigmoid, "sqrt": np.sqrt,
        "reciprocal": lambda v: 1.0 / np.asarray(v, np.float64),
        "cos": np.cos, "sin": np.sin, "abs": np.abs,
        "relu": lambda v: np.maximum(v, 0), "silu": lambda v: v * sigmoid(v),
        "gelu": lambda v: gelu(v, attrs.get("approximate", "none")),
    }
    if mnem not in fns:
        raise EvalError(mnem)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return fns[mnem](x)


def _norm_axis(axis, rank):
    if axis < 0:
        axis += rank
    if not 0 <= axis < max(rank, 1):
        raise EvalError("axis %d out of range for rank %d" % (axis, rank))
    return axis


def _slice(x, starts, ends, steps):
    if not (len(starts) == len(ends) == len(steps) == x.ndim):
        raise EvalError("slice needs one (start, end, step) per dim")
    idx = []
    for d, (s, e, st) in enumerate(zip(starts, ends, steps)):
        dim = x.shape[d]
        if st == 0:
            raise EvalError("slice step 0")
        if st > 0:
            if not 0 <= s <= e <= dim:
                raise EvalError("slice dim %d: need 0 <= start <= end <= dim, "
                                "got %d:%d on %d" % (d, s, e, dim))
            idx.append(slice(s, e, st))
        else:
            if not -1 <= e <= s <= dim - 1:
                raise EvalError("slice dim %d: need -1 <= end <= start <= "
                                "dim-1, got %d:%d on %d" % (d, s, e, dim))
            idx.append(slice(s, None if e == -1 else e, st))
    return x[tuple(idx)]


def _norm_indices(idx, dim):
    idx = np.asarray(idx).astype(np.int64)
    idx = np.where(idx < 0, idx + dim, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= dim):
        raise EvalError("index out of range [0, %d): %d..%d"
                        % (dim, idx.min(), idx.max()))
    return idx


def gather_nd(data, indices, batch_dims):
    indices = np.asarray(indices).astype(np.int64)
    b = batch_dims
    batch_shape = data.shape[:b]
    if tuple(indices.shape[:b]) != tuple(batch_shape):
        raise EvalError("gather_nd batch dims differ")
    m = indices.shape[-1]
    nb = int(np.prod(batch_shape, dtype=np.int64))
    data_r = data.reshape((nb,) + data.shape[b:])
    idx_r = indices.reshape((nb, -1, m))
    outs = []
    for i in range(nb):
        rows = []
        for t in idx_r[i]:
            t = tuple(int(v) + (data.shape[b + k] if v < 0 else 0)
                      for k, v in enumerate(t))
            rows.append(data_r[i][t])
        outs.append(np.stack(rows) if rows else
                    np.zeros((0,) + data.shape[b + m:], data.dtype))
    out = np.stack(outs)
    return out.reshape(tuple(indices.shape[:-1]) + data.shape[b + m:])


def _reduce(kind, x, axes, keepdims):
    axes = tuple(axes)
    if list(axes) != sorted(set(axes)) or any(a < 0 or a >= x.ndim for a in axes):
        raise EvalError("reduce axes must be sorted, unique and non-negative: %s"
                        % (axes,))
    x = _num(x)
    fns = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min,
           "prod": np.prod}
    if kind not in fns:
        raise EvalError("unknown reduce kind '%s'" % kind)
    if kind == "mean":
        x = np.asarray(x, np.float64)
    return fns[kind](x, axis=axes, keepdims=keepdims)


def softmax(x, axis):
    x = _f(x)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return e / np.sum(e, axis=axis, keepdims=True)


def matmul(a, b, ta=False, tb=False):
    a, b = _num(a), _num(b)
    if a.ndim < 2 or b.ndim < 2:
        raise EvalError("matmul operands need rank >= 2")
    if ta:
        a = np.swapaxes(a, -1, -2)
    if tb:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


def rotary(x, cos, sin, interleaved):
    x, cos, sin = _f(x), _f(cos), _f(sin)
    r = cos.shape[-1]
    if sin.shape[-1] != r or r > x.shape[-1] or r % 2:
        raise EvalError("rotary: bad rotary dim %d for input %s"
                        % (r, x.shape))
    xr, rest = x[..., :r], x[..., r:]
    if interleaved:
        rot = np.empty_like(xr)
        rot[..., 0::2] = -xr[..., 1::2]
        rot[..., 1::2] = xr[..., 0::2]
    else:
        h = r // 2
        rot = np.concatenate([-xr[..., h:], xr[..., :h]], axis=-1)
    out = xr * cos + rot * sin
    if out.shape != xr.shape:
        raise EvalError("rotary: cos/sin %s do not broadcast to %s"
                        % (cos.shape, xr.shape))
    return np.concatenate([out, rest], axis=-1)


def attention(q, k, v, mask, scale, causal, seq_major=False):
    q, k, v = _f(q), _f(k), _f(v)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise EvalError("attention operands must be rank 4")
    if seq_major:  # [B, S, H, D]: the same attention on the swapped layout
        out = attention(np.swapaxes(q, 1, 2), np.swapaxes(k, 1, 2),
                        np.swapaxes(v, 1, 2), mask, scale, causal)
        return np.swapaxes(out, 1, 2)
    B, Hq, S, D = q.shape
    Bk, Hkv, T, Dk = k.shape
    if Dk != D or v.shape[:3] != (Bk, Hkv, T) or Bk != B or Hq % Hkv:
        raise EvalError("attention shapes q%s k%s v%s" % (q.shape, k.shape, v.shape))
    group = Hq // Hkv
    heads = np.arange(Hq) // group
    kk, vv = k[:, heads], v[:, heads]          # [B, Hq, T, *]
    s = scale * np.matmul(q, np.swapaxes(kk, -1, -2))  # [B, Hq, S, T]
    if mask is not None:
        mask = np.asarray(mask)
        if not np.issubdtype(mask.dtype, np.floating):
            raise EvalError("attention mask must be additive (floating point), "
                            "got %s" % mask.dtype)
        s = s + np.broadcast_to(mask.astype(np.float64), s.shape)
    if causal:
        i = np.arange(S)[:, None]
        j = np.arange(T)[None, :]
        s = np.where(j > i + (T - S), -np.inf, s)
    return np.matmul(softmax(s, -1), vv)


def layer_norm(x, scale, bias, axis, eps):
    x = _f(x)
    axes = tuple(range(_norm_axis(axis, x.ndim), x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps) * _f(scale)
    return y + _f(bias) if bias is not None else y


def rms_norm(x, scale, axis, eps):
    x = _f(x)
    axes = tuple(range(_norm_axis(axis, x.ndim), x.ndim))
    ms = (x * x).mean(axis=axes, keepdims=True)
    return x / np.sqrt(ms + eps) * _f(scale)


def evaluate_op(op, vals):
    """Computes op on operand values (numpy arrays); returns the raw result."""
    mnem = op.name.split(".", 1)[1]
    a = op.attrs
    if mnem in _BINARY_OPS:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _binary(mnem, *vals)
    if mnem in _UNARY_OPS - {"cumsum", "trilu", "softmax"}:
        return _unary(mnem, vals[0], a)
    if mnem == "cmp":
        l, r = _num(vals[0]), _num(vals[1])
        preds = {"eq": np.equal, "lt": np.less, "le": np.less_equal,
                 "gt": np.greater, "ge": np.greater_equal}
        if op.extra not in preds:
            raise EvalError("unknown cmp predicate '%s'" % op.extra)
        return preds[op.extra](l, r)
    if mnem == "select":
        c = np.asarray(vals[0]) != 0
        return np.where(c, _f(vals[1]), _f(vals[2]))
    if mnem == "isnan":
        return np.isnan(_f(vals[0])) if np.issubdtype(np.asarray(vals[0]).dtype,
                                                      np.floating) \
            else np.zeros(np.shape(vals[0]), bool)
    if mnem == "cast":
        return np.asarray(vals[0])  # to_dtype does the conversion
    if mnem == "swiglu":
        g, u = _f(vals[0]), _f(vals[1])
        return g * sigmoid(g) * u
    if mnem == "reshape":
        x = np.asarray(vals[0])
        if x.size != int(np.prod(op.out_type.shape, dtype=np.int64)):
            raise EvalError("reshape changes the element count")
        return x.reshape(op.out_type.shape)
    if mnem == "broadcast":
        return np.broadcast_to(np.asarray(vals[0]), op.out_type.shape)
    if mnem == "transpose":
        perm = op.extra
        if sorted(perm) != list(range(np.ndim(vals[0]))):
            raise EvalError("transpose: bad permutation %s" % perm)
        return np.transpose(vals[0], perm)
    if mnem == "tile":
        return np.tile(vals[0], op.extra)
    if mnem == "slice":
        return _slice(np.asarray(vals[0]), *op.extra)
    if mnem == "concat":
        axis = _norm_axis(a["axis"], np.ndim(vals[0]))
        return np.concatenate([_f(v) for v in vals], axis=axis)
    if mnem == "gather":
        data = np.asarray(vals[0])
        axis = _norm_axis(a["axis"], data.ndim)
        return np.take(data, _norm_indices(vals[1], data.shape[axis]), axis=axis)
    if mnem == "gather_nd":
        return gather_nd(np.asarray(vals[0]), vals[1], a.get("batch_dims", 0))
    if mnem == "gather_elements":
        data = np.asarray(vals[0])
        axis = _norm_axis(a["axis"], data.ndim)
        return np.take_along_axis(data, _norm_indices(vals[1], data.shape[axis]),
                                  axis=axis)
    if mnem == "embedding":
        table = np.asarray(vals[0])
        ids = np.asarray(vals[1]).astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
            raise EvalError("embedding id out of range")
        return table[ids]
    if mnem == "cumsum":
        x = _num(vals[0])
        axis = _norm_axis(a["axis"], x.ndim)
        if a.get("reverse", False):
            x = np.flip(x, axis)
        c = np.cumsum(x, axis=axis)
        if a.get("exclusive", False):
            c = c - x
        if a.get("reverse", False):
            c = np.flip(c, axis)
        return c
    if mnem == "trilu":
        x = np.asarray(vals[0])
        k = a.get("k", 0)
        fn = np.triu if a["upper"] else np.tril
        return fn(x, k)
    if mnem == "reduce":
        return _reduce(op.extra, vals[0], a["axes"], a["keepdims"])
    if mnem == "softmax":
        x = _f(vals[0])
        return softmax(x, _norm_axis(a["axis"], x.ndim))
    if mnem == "layer_norm":
        return layer_norm(vals[0], vals[1], vals[2] if len(vals) > 2 else None,
                          a["axis"], a["epsilon"])
    if mnem == "rms_norm":
        return rms_norm(vals[0], vals[1], a["axis"], a["epsilon"])
    if mnem == "matmul":
        return matmul(vals[0], vals[1], a.get("transpose_a", False),
                      a.get("transpose_b", False))
    if mnem == "linear":
        x, w = _f(vals[0]), _f(vals[1])
        if w.ndim != 2:
            raise EvalError("linear weight must be rank 2")
        y = x @ (w.T if a.get("transpose_weight", False) else w)
        # Bias, residual and GELU in float64, rounded once to the result.
        rest = vals[2:]
        if op.extra:
            y = y + _f(rest.pop())
        if rest:
            y = y + _f(rest[0])
        if a.get("gelu_tanh", False):
            if op.extra:
                raise EvalError("linear with both gelu_tanh and a residual")
            y = gelu(y, "tanh")
        return y
    if mnem == "rotary":
        return rotary(vals[0], vals[1], vals[2], a.get("interleaved", False))
    if mnem == "attention":
        return attention(vals[0], vals[1], vals[2],
                         vals[3] if len(vals) > 3 else None,
                         a["scale"], a.get("causal", False),
                         a.get("seq_major", False))
    raise EvalError("no semantics for %s" % op.name)


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------

class WeightSource:
    """Initializers of an ONNX model, converted lazily by name."""

    def __init__(self, onnx_path):
        import onnx
        from onnx import numpy_helper
        self._nh = numpy_helper
        model = onnx.load(onnx_path)  # loads external data from its directory
        self._inits = {t.name: t for t in model.graph.initializer}
        # Constant nodes are looked at too, in case an exporter keeps a weight
        # there.
        for node in model.graph.node:
            if node.op_type == "Constant" and len(node.output) == 1:
                for at in node.attribute:
                    if at.name == "value" and node.output[0] not in self._inits:
                        self._inits[node.output[0]] = at.t
        self._cache = {}

    def get(self, name):
        if name not in self._cache:
            if name not in self._inits:
                raise EvalError("weight '%s' is not an initializer of the model"
                                % name)
            self._cache[name] = self._nh.to_array(self._inits[name])
        return self._cache[name]


def evaluate(mod, inputs, weights, keep_all=False, trace=None):
    """Evaluates the parsed module.  `inputs` maps weft.name (or argN) to
    arrays, `weights` has get(name).  Returns (outputs, env): outputs as a list
    in result order, env maps every SSA name to its value when keep_all."""
    env = {}
    for i, (ssa, ty, name) in enumerate(mod.args):
        key = name if name is not None and name in inputs else "arg%d" % i
        if key not in inputs:
            raise EvalError("no input for argument %s (%s)" % (ssa, name))
        v = np.asarray(inputs[key])
        if tuple(v.shape) != ty.shape:
            raise EvalError("input '%s' has shape %s, the function wants %r"
                            % (key, v.shape, ty))
        env[ssa] = to_dtype(v, ty)
    # Free values once they are dead unless keep_all.
    last_use = {}
    for idx, op in enumerate(mod.ops):
        for o in op.operands:
            last_use[o] = idx
    for r in mod.returns:
        last_use[r] = len(mod.ops)
    for idx, op in enumerate(mod.ops):
        try:
            if op.name == "arith.constant":
                val = parse_dense(op.extra, op.out_type)
            elif op.name == "weft.weight":
                w = np.asarray(weights.get(op.extra))
                if tuple(w.shape) != op.out_type.shape:
                    raise EvalError("weight '%s' has shape %s, declared %r"
                                    % (op.extra, w.shape, op.out_type))
                if w.dtype != op.out_type.np_dtype:
                    raise EvalError("weight '%s' has dtype %s, declared %r"
                                    % (op.extra, w.dtype, op.out_type))
                val = w
            else:
                vals = []
                for o, ty in zip(op.operands, op.in_types):
                    if o not in env:
                        raise EvalError("use of undefined value %s" % o)
                    v = env[o]
                    if tuple(v.shape) != ty.shape or v.dtype != ty.np_dtype:
                        raise EvalError("operand %s is %s %s but typed %r"
                                        % (o, v.dtype, v.shape, ty))
                    vals.append(v)
                val = to_dtype(evaluate_op(op, vals), op.out_type)
        except EvalError as e:
            raise EvalError("line %d (%s = %s): %s"
                            % (op.lineno, op.result, op.name, e))
        env[op.result] = val
        if trace is not None:
            trace(op, val)
        if not keep_all:
            for o in op.operands:
                if last_use.get(o) == idx:
                    env.pop(o, None)
    outs = []
    for r, (ty, _) in zip(mod.returns, mod.results):
        if r not in env:
            raise EvalError("returned value %s is undefined" % r)
        outs.append(to_dtype(env[r], ty))
    return outs, env


def output_names(mod):
    return [n if n is not None else "result%d" % i
            for i, (_, n) in enumerate(mod.results)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("module", help="weft-dialect MLIR text")
    p.add_argument("--onnx", required=True, help="model holding the weights")
    p.add_argument("--inputs", required=True, help="npz of @main's arguments")
    p.add_argument("--outputs", required=True, help="npz to write results to")
    p.add_argument("--func", default="main")
    args = p.parse_args(argv)
    with open(args.module) as f:
        mod = parse_module(f.read(), args.func)
    inputs = dict(np.load(args.inputs))
    try:
        outs, _ = evaluate(mod, inputs, WeightSource(args.onnx))
    except EvalError as e:
        print("weft_eval: error: %s" % e, file=sys.stderr)
        return 1
    np.savez(args.outputs, **dict(zip(output_names(mod), outs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
