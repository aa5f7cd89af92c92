"""The normalize engine: raw records (dicts, as the client yields them) -> typed Arrow tables.

Nothing here knows an entity. An `Entity` (declared in each source module,
`pipelines.altegio.sources`) says which record field becomes which column and kind, which
fields are known, and which hooks build derived columns and child rows; `run(entity, tables,
records, context)` turns one batch into the main table plus its child tables, each exactly its
declared schema, and the quarantine rows.

What is forgiven (the API really does it, CONTRACT §1.6): numeric strings for ids, amounts
and counts; flags as 1/0, "1"/"0", "true"/"false"; foreign keys sent as 0 for "none" (become
null); timestamps with an offset written with or without a colon (a timestamp without offset
is read in the chain's time zone; "" and "0000-00-00..." are null).

What is refused: a record that cannot be typed - not a JSON object, missing or invalid id
(not a positive integer), a bool where a number is expected, a non-numeric amount, a
fractional or out-of-int64 integer, a non-finite number, a list/object where a scalar is
expected, text that is not valid Unicode, a malformed nested list. Such a record goes to the
quarantine table verbatim with the reason (personal fields an entity declares redacted); it is
never dropped and never stops the batch. Its child rows are not emitted.

Duplicate ids within one batch: among the records that could be typed, the **last occurrence
wins**; each earlier one goes to quarantine with reason "duplicate id <id>: ...". (A later
page holds the fresher read when the API shifts rows between pages.)

Schema drift: top-level fields (and fields of flattened objects, `Entity.nested_known`) that
the schema does not know are kept, per row, as a JSON object in ``extra`` and their names
reported in ``NormalizedBatch.drift``. Unknown enum codes keep their code, get the label
``unknown:<code>`` and are reported in ``NormalizedBatch.unknown_codes``; a string-enum value
outside its documented list is kept as sent and reported in ``NormalizedBatch.unknown_values``
(see enums.py for the E2/E3 conflict rule). CONTRACT is docs/altegio_api_contract.md.

Speed: columns are built as Python lists and converted once with ``pa.array(..., type=...)``;
a column whose raw values already have the right Python type skips per-value coercion.
"""

import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.altegio.enums import ENUMS, EnumTable
from pipelines.altegio.schema import QUARANTINE, TableSpec

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_NONE_TYPE = type(None)
# What a personal value becomes wherever a raw record is kept (quarantine, `extra`).
REDACTED = "<redacted>"


@dataclass
class NormalizedBatch:
    """Typed output of one normalize call.

    `tables`: main table + its child tables, each exactly its declared schema.
    `quarantine`: one row per record that could not be typed. `drift`: table -> unknown field
    names seen. `unknown_codes`: "table.column" -> undocumented numeric enum codes.
    `unknown_values`: "table.column" -> undocumented values of string enums (E8-E12, E17, E18).
    """

    tables: dict[str, pa.Table]
    quarantine: pa.Table
    drift: dict[str, set[str]] = field(default_factory=dict)
    unknown_codes: dict[str, set[int]] = field(default_factory=dict)
    unknown_values: dict[str, set[str]] = field(default_factory=dict)


class Bad(Exception):
    """A value or record that cannot be typed; the message becomes the quarantine reason."""


class _NotObject:
    def __repr__(self) -> str:
        return "<not an object>"


_NOT_OBJECT = _NotObject()


# ---------------------------------------------------------------------------------------------
# Scalar coercion (slow path, one value at a time)


def describe(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_int(v: object) -> int:
    if isinstance(v, bool):
        raise Bad(f"bool where an integer is expected ({v!r})")
    if isinstance(v, int):
        out = v
    elif isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise Bad(f"not an integer ({describe(v)})")
        out = int(v)
    elif isinstance(v, str):
        s = v.strip()
        try:
            out = int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise Bad(f"not an integer ({describe(v)})") from None
            if not math.isfinite(f) or not f.is_integer():
                raise Bad(f"not an integer ({describe(v)})") from None
            out = int(f)
    else:
        raise Bad(f"{type(v).__name__} where an integer is expected ({describe(v)})")
    if not INT64_MIN <= out <= INT64_MAX:
        raise Bad(f"integer out of int64 range ({describe(v)})")
    return out


def _to_id(v: object) -> int:
    out = _to_int(v)
    if out <= 0:
        raise Bad(f"invalid id ({describe(v)})")
    return out


def _to_fk(v: object) -> int | None:
    out = _to_int(v)
    return None if out == 0 else out


def _to_float(v: object) -> float:
    if isinstance(v, bool):
        raise Bad(f"bool where a number is expected ({v!r})")
    if isinstance(v, int | float):
        try:
            out = float(v)
        except OverflowError:
            raise Bad(f"number out of float64 range ({describe(v)})") from None
    elif isinstance(v, str):
        try:
            out = float(v.strip())
        except ValueError:
            raise Bad(f"not a number ({describe(v)})") from None
    else:
        raise Bad(f"{type(v).__name__} where a number is expected ({describe(v)})")
    if not math.isfinite(out):
        raise Bad(f"non-finite number ({describe(v)})")
    return out


_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}


def _to_bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return v == 1
    if isinstance(v, float) and v in (0.0, 1.0):
        return v == 1.0
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise Bad(f"not a flag ({describe(v)})")


def check_text(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise Bad(f"text is not valid unicode ({describe(s)})") from None
    return s


def _to_str(v: object) -> str:
    if isinstance(v, str):
        return check_text(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    raise Bad(f"{type(v).__name__} where text is expected ({describe(v)})")


def _to_json_text(v: object) -> str:
    """A string as sent; anything else as its JSON (used for loosely typed objects)."""
    if isinstance(v, str):
        return check_text(v)
    return check_text(to_json(v))


def _to_str_list(v: object) -> list[str]:
    if not isinstance(v, list):
        raise Bad(f"{type(v).__name__} where a list is expected")
    return [_to_str(x) for x in v if x is not None]


def _parse_ts(v: object, tz: tzinfo) -> datetime | None:
    if not isinstance(v, str):
        raise Bad(f"{type(v).__name__} where a timestamp is expected ({describe(v)})")
    s = v.strip()
    if not s or s.startswith("0000-00-00"):
        return None
    try:
        out = datetime.fromisoformat(s)
    except ValueError:
        raise Bad(f"not an ISO-8601 timestamp ({describe(v)})") from None
    if out.tzinfo is None:
        out = out.replace(tzinfo=tz)
    try:
        return out.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Bad(f"timestamp out of range ({describe(v)})") from None


def _to_date(v: object) -> date | None:
    if not isinstance(v, str):
        raise Bad(f"{type(v).__name__} where a date is expected ({describe(v)})")
    s = v.strip()
    if not s or s.startswith("0000-00-00"):
        return None
    try:
        return date.fromisoformat(s[:10])
    except ValueError:
        raise Bad(f"not an ISO date ({describe(v)})") from None


def to_json(v: object) -> str:
    """JSON text of any value; never raises (falls back to the stdlib, then to repr)."""
    try:
        return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, ValueError, orjson.JSONEncodeError):
        pass
    try:
        return json.dumps(v, default=repr, skipkeys=True)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(repr(v))


# ---------------------------------------------------------------------------------------------
# Column coercion (fast path when the raw Python types already fit)

_FAST_TYPES: dict[str, frozenset[type]] = {
    "id": frozenset({int}),
    "int": frozenset({int, _NONE_TYPE}),
    "fk": frozenset({int, _NONE_TYPE}),
    "float": frozenset({int, float, _NONE_TYPE}),
    "bool": frozenset({bool, _NONE_TYPE}),
    "str": frozenset({str, _NONE_TYPE}),
}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.int64(),
    "int": pa.int64(),
    "fk": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.string(),
}


class Column:
    """One column: Python values and/or the converted array (either is derived on demand)."""

    __slots__ = ("_values", "array")

    def __init__(self, values: list[Any] | None, array: pa.Array | None = None) -> None:
        self._values = values
        self.array = array  # prebuilt when no per-value work was needed

    @property
    def values(self) -> list[Any]:
        if self._values is None:
            assert self.array is not None
            self._values = self.array.to_pylist()
        return self._values

    @values.setter
    def values(self, values: list[Any]) -> None:
        self._values = values
        self.array = None


def _fast(raw: list[Any], kind: str) -> Column | None:
    allowed = _FAST_TYPES.get(kind)
    if allowed is None or not allowed.issuperset(set(map(type, raw))):
        return None
    try:
        array = pa.array(raw, type=_ARROW_TYPES[kind])
    except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        return None
    if kind == "id" and len(array) and pc.min(array).as_py() <= 0:
        return None
    if kind == "float" and not pc.all(pc.is_finite(array)).as_py():
        return None
    if kind == "fk":
        array = pc.if_else(pc.equal(array, 0), pa.scalar(None, pa.int64()), array)
        return Column(None, array)
    return Column(raw, array)


def _coerce_column(
    raw: list[Any], kind: str, name: str, tz: tzinfo, bad: dict[int, str], *, personal: bool
) -> Column:
    """The column's values coerced to `kind`; a value that cannot be becomes None and its
    record's quarantine reason (without the value when it is personal data)."""
    fast = _fast(raw, kind)
    if fast is not None:
        return fast
    convert = _converter(kind, tz)
    out: list[Any] = []
    for i, v in enumerate(raw):
        if v is None:
            if kind == "id":
                bad.setdefault(i, f"{name}: missing id")
            out.append(None)
            continue
        try:
            if v is _NOT_OBJECT:
                raise Bad("parent is not an object")
            out.append(convert(v))
        except Bad as exc:
            out.append(None)
            reason = f"not a valid {kind} ({REDACTED})" if personal else str(exc)
            bad.setdefault(i, f"{name}: {reason}")
    return Column(out)


def _converter(kind: str, tz: tzinfo) -> Callable[[object], Any]:
    if kind == "ts":
        return lambda v: _parse_ts(v, tz)
    return _CONVERTERS[kind]


_CONVERTERS: dict[str, Callable[[object], Any]] = {
    "id": _to_id,
    "int": _to_int,
    "fk": _to_fk,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
    "json": _to_json_text,
    "date": _to_date,
    "strlist": _to_str_list,
}


def _dig(r: dict[Any, Any], path: tuple[str, ...]) -> Any:
    v: Any = r
    for key in path:
        if v is None:
            return None
        if not isinstance(v, dict):
            return _NOT_OBJECT
        v = v.get(key)
    return v


def _extract(
    recs: list[dict[Any, Any]], path: tuple[str, ...], cache: dict[str, list[Any]]
) -> list[Any]:
    if len(path) == 1:
        return list(map(dict.get, recs, repeat(path[0])))
    if len(path) == 2:
        parents = cache.get(path[0])
        if parents is None:
            parents = cache[path[0]] = list(map(dict.get, recs, repeat(path[0])))
        if set(map(type, parents)) == {dict}:
            return list(map(dict.get, parents, repeat(path[1])))
    return [_dig(r, path) for r in recs]


def coerce_value(v: object, kind: str, tz: tzinfo, where: str) -> Any:
    if v is None:
        if kind == "id":
            raise Bad(f"{where}: missing id")
        return None
    try:
        return _converter(kind, tz)(v)
    except Bad as exc:
        raise Bad(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Entity declarations

Src = tuple[str, tuple[str, ...], str]  # (column, path in the record, kind)


def src(column: str, kind: str, *path: str) -> Src:
    """Column `column` of kind `kind` from the record field at `path` (default: the column's
    name). Kinds: id, int, fk (0 is null), float, bool, str, json, date, ts, strlist."""
    return (column, path or (column,), kind)


@dataclass
class Context:
    """One batch: for which chain and window it was read, and what it found on the way."""

    table: str
    chain_id: int | None
    extracted_at: datetime
    tz: tzinfo
    tz_name: str
    endpoint: str
    drift: dict[str, set[str]] = field(default_factory=dict)
    unknown: dict[str, set[int | str]] = field(default_factory=dict)
    # The day the batch was requested for (DAILY sources stamp it on every row).
    day: date | None = None
    # The day window the records were read for (names a quarantine partition).
    window_day: date | None = None
    # The days a created-date window covered; a record created outside them is refused.
    window_days: frozenset[date] | None = None
    # Key of the keyed hashes of personal data (an entity that needs one refuses to run without).
    personal_key: bytes | None = None
    # Labels learned from the records themselves: E13 codes are not enumerated by Altegio, so
    # a promotion's documented string `type` (E8) labels the numeric loyalty_type_id it and
    # its rules carry (CONTRACT §7 E13: "map from the string type instead").
    learned_labels: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def window_label(self) -> str:
        """Quarantine partition of a record that belongs to no day of its window."""
        if self.window_days:
            return f"{min(self.window_days).isoformat()}..{max(self.window_days).isoformat()}"
        return self.window_day.isoformat() if self.window_day else "unknown"


ChildRows = dict[str, list[tuple[int, dict[str, Any]]]]
RowHook = Callable[[dict[Any, Any], int, Context, dict[str, Column]], ChildRows]
ColumnHook = Callable[[dict[str, Column], dict[int, str], Context], None]


@dataclass(frozen=True)
class Entity:
    """How the records of one source map onto its tables."""

    sources: tuple[Src, ...]
    key: str = "id"  # the id column used for duplicate detection
    # Top-level fields that are known though no column reads them directly.
    extra_known: frozenset[str] = frozenset()
    # Flattened objects: field -> its known keys (others are drift, kept in `extra`).
    nested_known: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Derived columns, after the declared ones are coerced (may refuse records via `bad`).
    columns_hook: ColumnHook | None = None
    # Child rows of one record (runs per record; raising Bad quarantines the record).
    row_hook: RowHook | None = None
    # child table -> {child column: parent column} copied onto each child row.
    inherit: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The column stamped with the requested day (Context.day), if any; required then.
    day_column: str | None = None
    # The column holding each record's own day partition (set by a hook), if any: a refused
    # record is quarantined under that day.
    partition_day: str | None = None
    # Objects holding personal data: object field -> its keys kept verbatim. Every other key
    # of such an object is replaced by REDACTED in quarantine `raw_json` and in `extra`.
    personal: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Hooks hash personal values with Context.personal_key: a batch without one is refused.
    needs_personal_key: bool = False

    @property
    def known(self) -> frozenset[str]:
        return frozenset(p[0] for _, p, _ in self.sources) | self.extra_known

    def is_personal(self, path: tuple[str, ...]) -> bool:
        """Whether the record field at `path` is personal data (never kept as sent)."""
        kept = self.personal.get(path[0])
        return kept is not None and (len(path) < 2 or path[1] not in kept)


def child_row(
    obj: object,
    spec: Sequence[Src],
    where: str,
    table: str,
    ctx: Context,
    known_extra: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """One child row from a nested object; unknown keys go to its `extra`."""
    if not isinstance(obj, dict):
        raise Bad(f"{where}: {type(obj).__name__} where an object is expected")
    row: dict[str, Any] = {}
    for column, path, kind in spec:
        v = _dig(obj, path)
        if v is _NOT_OBJECT:
            raise Bad(f"{where}.{path[0]}: not an object")
        row[column] = coerce_value(v, kind, ctx.tz, f"{where}.{'.'.join(path)}")
    known = {p[0] for _, p, _ in spec} | known_extra
    unknown = [k for k in obj if k not in known]
    if unknown:
        ctx.drift.setdefault(table, set()).update(str(k) for k in unknown)
        row["extra"] = check_text(to_json({str(k): obj[k] for k in unknown}))
    return row


def nested_list(rec: Mapping[Any, Any], key: str, where: str | None = None) -> list[Any]:
    v = rec.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise Bad(f"{where or key}: {type(v).__name__} where a list is expected")
    return v


def id_rows(
    values: Iterable[Any], where: str, parent_col: str, parent_id: Any, col: str, ctx: Context
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, v in enumerate(values):
        item = coerce_value(v, "id", ctx.tz, f"{where}[{i}]")
        if item in seen:
            continue
        seen.add(item)
        rows.append({"id": item, col: item, parent_col: parent_id})
    return rows


# ---------------------------------------------------------------------------------------------
# Assembly

LabelSpec = tuple[str, str, EnumTable, str | None]


@functools.cache
def _label_specs(spec: TableSpec) -> list[LabelSpec]:
    """(code column, label column, enum, title column) for every decoded code of a table."""
    schema = spec.schema
    names = set(schema.names)
    out = []
    for f in schema:
        meta = f.metadata or {}
        if b"enum" not in meta or not pa.types.is_integer(f.type):
            continue
        label = f.name.removesuffix("_id")
        if label not in names or b"enum" in (schema.field(label).metadata or {}):
            continue
        title = f"{label}_title" if f"{label}_title" in names else None
        enum = ENUMS[meta[b"enum"].decode()]
        out.append((f.name, label, enum, title if enum.alternative else None))
    return out


@functools.cache
def _code_columns(spec: TableSpec) -> list[tuple[str, EnumTable]]:
    """(column, enum) for every column of a table that holds enum values (codes or strings)."""
    return [
        (f.name, ENUMS[f.metadata[b"enum"].decode()])
        for f in spec.schema
        if f.metadata and b"enum" in f.metadata
    ]


def _build_table(
    spec: TableSpec, cols: dict[str, Column], n: int, ctx: Context, entity: Entity
) -> pa.Table:
    """Decode labels, stamp lineage and convert every column once to its declared type."""
    for code_col, label_col, enum, title_col in _label_specs(spec):
        codes = cols[code_col].values
        if title_col is not None:
            titles = cols[title_col].values
            labels = [enum.label_from_title(c, t) for c, t in zip(codes, titles, strict=False)]
        else:
            learned = ctx.learned_labels.get(enum.name, {})
            mapping = {
                c: learned[c] if not enum.is_known(c) and c in learned else enum.label(c)
                for c in set(codes)
            }
            labels = [mapping[c] for c in codes]
        cols[label_col] = Column(labels)
    for code_col, enum in _code_columns(spec):
        learned = ctx.learned_labels.get(enum.name, {})
        unknown = {
            c for c in set(cols[code_col].values) if not enum.is_known(c) and c not in learned
        }
        if unknown:
            ctx.unknown.setdefault(f"{spec.name}.{code_col}", set()).update(unknown)
    constants: dict[str, Any] = {
        "chain_id": ctx.chain_id,
        "_extracted_at": ctx.extracted_at,
        "_source_endpoint": ctx.endpoint,
    }
    if entity.day_column is not None:
        constants[entity.day_column] = ctx.day
    arrays = []
    for f in spec.schema:
        column = cols.get(f.name)
        if column is None:
            arrays.append(pa.repeat(pa.scalar(constants.get(f.name), type=f.type), n))
        elif column.array is not None and len(column.array) == n:
            arrays.append(column.array)
        else:
            arrays.append(pa.array(column.values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def _rows_to_columns(rows: list[dict[str, Any]], spec: TableSpec) -> dict[str, Column]:
    return {
        name: Column([r.get(name) for r in rows])
        for name in spec.schema.names
        if not rows or name == "extra" or any(name in r for r in rows)
    }


def _redacted(record: object, entity: Entity) -> object:
    """The record as quarantine may keep it: personal keys of personal objects replaced."""
    if not entity.personal:
        return record
    if not isinstance(record, dict):
        # Its shape is unknown, so is where the personal data would be in it.
        return f"{REDACTED} ({type(record).__name__} record of a source with personal data)"
    out = dict(record)
    for key, kept in entity.personal.items():
        obj = out.get(key)
        if isinstance(obj, dict):
            out[key] = {k: v if k in kept else REDACTED for k, v in obj.items()}
        elif obj is not None:
            out[key] = REDACTED
    return out


def _quarantine_rows(
    records: Sequence[object],
    reasons: Mapping[int, str],
    ids: Mapping[int, Any],
    partitions: Mapping[int, str],
    ctx: Context,
    entity: Entity,
) -> pa.Table:
    order = sorted(reasons)
    n = len(order)
    day = ctx.day or ctx.window_day
    default_partition = day.isoformat() if day else "all"
    spec = QUARANTINE.schema
    data = {
        "source_table": [ctx.table] * n,
        "chain_id": [ctx.chain_id] * n,
        "partition_key": [partitions.get(i, default_partition) for i in order],
        "id": [ids.get(i) for i in order],
        "record_index": order,
        "raw_json": [_safe_text(to_json(_redacted(records[i], entity))) for i in order],
        "reason": [_safe_text(reasons[i]) for i in order],
        "quarantined_at": [ctx.extracted_at] * n,
        "_source_endpoint": [ctx.endpoint] * n,
    }
    return pa.Table.from_arrays([pa.array(data[f.name], type=f.type) for f in spec], schema=spec)


def _safe_text(s: str) -> str:
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _unknown_fields(rec: dict[Any, Any], entity: Entity) -> dict[str, Any]:
    """Fields of one record the entity does not know, as `extra` keeps them."""
    known = entity.known
    unknown = {str(k): rec[k] for k in rec if k not in known}
    for obj_key, sub_known in entity.nested_known.items():
        obj = rec.get(obj_key)
        if isinstance(obj, dict) and not sub_known.issuperset(obj):
            personal = obj_key in entity.personal
            unknown.update(
                {
                    f"{obj_key}.{k}": REDACTED if personal else obj[k]
                    for k in obj
                    if k not in sub_known
                }
            )
    return unknown


def run(
    entity: Entity, tables: Sequence[TableSpec], records: Sequence[object], ctx: Context
) -> NormalizedBatch:
    """Type one batch: `tables` are the source's main table and then its child tables."""
    main = tables[0]
    reasons: dict[int, str] = {}  # position in `records` -> quarantine reason
    positions: list[int] = []
    recs: list[dict[Any, Any]] = []
    if set(map(type, records)) <= {dict}:
        positions = list(range(len(records)))
        recs = list(records)  # type: ignore[arg-type]
    else:
        for i, r in enumerate(records):
            if isinstance(r, dict):
                positions.append(i)
                recs.append(r)
            else:
                reasons[i] = f"record is {type(r).__name__}, not a JSON object"
    n = len(recs)
    bad: dict[int, str] = {}  # position in `recs`

    cols: dict[str, Column] = {}
    cache: dict[str, list[Any]] = {}
    for column, path, kind in entity.sources:
        raw = _extract(recs, path, cache)
        cols[column] = _coerce_column(
            raw, kind, column, ctx.tz, bad, personal=entity.is_personal(path)
        )
    if entity.columns_hook is not None:
        entity.columns_hook(cols, bad, ctx)

    children: ChildRows = {spec.name: [] for spec in tables[1:]}
    if entity.row_hook is not None:
        for i, rec in enumerate(recs):
            if i in bad:
                continue
            try:
                for name, rows in entity.row_hook(rec, i, ctx, cols).items():
                    children[name].extend(rows)
            except Bad as exc:
                bad[i] = str(exc)
            except Exception as exc:  # a malformed record must never stop the batch
                bad[i] = f"could not be typed: {type(exc).__name__}: {exc}"

    keys = cols[entity.key].values
    winner: dict[Any, int] = {}
    for i in range(n - 1, -1, -1) if bad or len(set(keys)) != n else ():
        if i in bad:
            continue
        if keys[i] in winner:
            bad[i] = (
                f"duplicate id {keys[i]}: a later record in this batch (index "
                f"{positions[winner[keys[i]]]}) wins"
            )
        else:
            winner[keys[i]] = i

    extras: list[str | None] = [None] * n
    flags = list(map(entity.known.issuperset, recs))
    suspects = set() if all(flags) else {i for i, ok in enumerate(flags) if not ok}
    for obj_key, sub_known in entity.nested_known.items():
        objs = cache.get(obj_key) or list(map(dict.get, recs, repeat(obj_key)))
        if set(map(type, objs)) == {dict}:
            flags = list(map(sub_known.issuperset, objs))
            if not all(flags):
                suspects.update(i for i, ok in enumerate(flags) if not ok)
        else:
            suspects.update(
                i for i, o in enumerate(objs) if isinstance(o, dict) and not sub_known.issuperset(o)
            )
    for i in sorted(suspects):
        unknown = _unknown_fields(recs[i], entity)
        if unknown:
            try:
                extras[i] = check_text(to_json(unknown))
            except Bad as exc:
                bad.setdefault(i, f"extra: {exc}")
            if i not in bad:
                ctx.drift.setdefault(main.name, set()).update(unknown)
    cols["extra"] = Column(extras, None if suspects else pa.nulls(n, pa.string()))

    partitions: dict[int, str] = {}
    if entity.partition_day is not None:
        days = cols[entity.partition_day].values
        inside = ctx.window_days
        partitions = {
            positions[i]: (
                days[i].isoformat()
                if days[i] is not None and (inside is None or days[i] in inside)
                else ctx.window_label
            )
            for i in range(n)
        }
    for i, reason in bad.items():
        reasons[positions[i]] = reason
    ids: dict[int, Any] = {
        positions[i]: keys[i] for i in bad if isinstance(keys[i], int) and keys[i] > 0
    }

    keep = [i for i in range(n) if i not in bad]
    # Parent values by record position, read before the filter below renumbers the rows.
    inherited = {
        parent_column: cols[parent_column].values
        for links in entity.inherit.values()
        for parent_column in links.values()
    }
    if bad:
        mask = pa.array([i not in bad for i in range(n)], type=pa.bool_())
        for c in cols.values():
            if c.array is not None and len(c.array) == n:
                c.array = c.array.filter(mask)
                c._values = None
            else:
                c.values = [c.values[i] for i in keep]
    built = {main.name: _build_table(main, cols, len(keep), ctx, entity)}
    for spec in tables[1:]:
        kept = [(p, r) for p, r in children[spec.name] if p not in bad]
        for column, parent_column in entity.inherit.get(spec.name, {}).items():
            values = inherited[parent_column]
            for p, r in kept:
                r[column] = values[p]
        child_cols = _rows_to_columns([r for _, r in kept], spec)
        built[spec.name] = _build_table(spec, child_cols, len(kept), ctx, entity)
    return NormalizedBatch(
        tables=built,
        quarantine=_quarantine_rows(records, reasons, ids, partitions, ctx, entity),
        drift=ctx.drift,
        unknown_codes={
            k: {c for c in v if isinstance(c, int)}
            for k, v in ctx.unknown.items()
            if any(isinstance(c, int) for c in v)
        },
        unknown_values={
            k: {c for c in v if isinstance(c, str)}
            for k, v in ctx.unknown.items()
            if any(isinstance(c, str) for c in v)
        },
    )


def timezone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError naming it when it does not exist."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
