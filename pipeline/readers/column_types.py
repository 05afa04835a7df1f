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
    try:
        arr = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return pa.string()
    # pyarrow's inference bends some values to agree: [0.5, false] becomes list<double> [0.5, 0.0]
    if not all(_same_value(a, b) for a, b in zip(arr.to_pylist(), values, strict=True)):
        return pa.string()
    return settle_type(arr.type)


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
