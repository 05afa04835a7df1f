"""Arrow types for output columns copied from the input: inferred from JSON values, or settled from an
input schema so that every later value fits (formats' `column_types` use these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def infer_type(values: list) -> pa.DataType:
    """pyarrow's type for these Python values (JSON-decoded), string when they do not agree on one."""
    import pyarrow as pa

    if not values:
        return pa.string()
    # the common columns, of one scalar kind, without building and comparing an Arrow array (plan time reads
    # records of every input file); the types are those pyarrow infers for them
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and (kind := kinds.pop()) in _SCALAR_TYPES:
        if kind is not int or all(_INT64_MIN <= v <= _INT64_MAX for v in values):
            return _SCALAR_TYPES[kind]()
    try:
        arr = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return pa.string()
    # pyarrow's inference bends some values to agree: [0.5, false] becomes list<double> [0.5, 0.0]
    if not all(_same_value(a, b) for a, b in zip(arr.to_pylist(), values, strict=True)):
        return pa.string()
    return settle_type(arr.type)


_SCALAR_TYPES: dict[type, Any] = {
    str: lambda: _pa().string(),
    bool: lambda: _pa().bool_(),
    float: lambda: _pa().float64(),
    int: lambda: _pa().int64(),
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _pa() -> Any:
    import pyarrow as pa

    return pa


def _same_value(a: Any, b: Any) -> bool:
    """Equal as data: 1 and 1.0 are, False and 0.0 are not (Python says they are)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        # pyarrow fills the fields a record lacks with null
        return set(b) <= set(a) and all(_same_value(a[k], b.get(k)) for k in a)
    return a == b


def settle_type(t: pa.DataType) -> pa.DataType:
    """A type fit for an output column: no null or empty-struct leaves (they would reject every later
    value; string instead), dictionary columns as their value type, float16 as float32."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return settle_type(t.value_type)
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return pa.string()
        return pa.struct([f.with_type(settle_type(f.type)) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(settle_type(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(settle_type(t.value_type)), t.list_size)
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(settle_type(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(settle_type(t.key_type), settle_type(t.item_type))
    return t


_TYPE_HELP = "an Arrow type name: string, int64, int32, float64, float32, bool, date32, timestamp[us], list<string>"


def parse_type(text: str) -> pa.DataType:
    """A declared column type (`output.metadata_columns: {score: float64}`) -> its Arrow type.

    pyarrow's own aliases (string, int64, double, bool, timestamp[ms], date32, ...) plus `list<T>` and
    `large_list<T>`; a ValueError names the accepted forms."""
    import pyarrow as pa

    t = text.strip()
    for prefix, make in (("list<", pa.list_), ("large_list<", pa.large_list)):
        if t.startswith(prefix) and t.endswith(">"):
            return make(parse_type(t[len(prefix) : -1]))
    try:
        return settle_type(pa.type_for_alias(t))
    except (ValueError, KeyError):
        raise ValueError(f"unknown type {text!r}; give {_TYPE_HELP}") from None


def merge_types(per_file: dict[str, pa.DataType]) -> tuple[pa.DataType, str]:
    """One column type for the types a column has in each file (file -> type), and a note when they differ:
    a widening pyarrow makes without loss (int32 and int64 -> int64, int64 and double -> double), else string
    (the values are written as JSON text, and the plan says so)."""
    import pyarrow as pa

    distinct = list(dict.fromkeys(per_file.values()))
    if len(distinct) <= 1:
        return (distinct[0] if distinct else pa.string()), ""
    shown = ", ".join(f"{t} in {_short(f)}" for f, t in _first_per_type(per_file).items())
    try:
        merged = (
            pa.unify_schemas([pa.schema([pa.field("c", t)]) for t in distinct], promote_options="permissive")
            .field("c")
            .type
        )
    except (pa.ArrowException, TypeError, ValueError):
        merged = None
    if merged is not None and not pa.types.is_string(merged) and not pa.types.is_large_string(merged):
        return settle_type(merged), f"{shown}: widened to {settle_type(merged)}"
    return pa.string(), f"{shown}: no one type holds them, written as JSON text (declare a type to count misfits)"


def _first_per_type(per_file: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    seen: dict[pa.DataType, str] = {}
    for f, t in per_file.items():
        seen.setdefault(t, f)
    return {f: t for t, f in seen.items()}


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]
