"""Raw Altegio records (dicts, as the client yields them) -> typed pyarrow tables.

One call of ``normalize(table, records, ...)`` turns one batch of one entity into its main
table plus its child tables, each exactly ``schema.TABLES[name].schema``.
``normalize_groups(records, extracted_at)`` does the same for ``GET /groups`` (chains +
locations).

What is forgiven (the API really does it, CONTRACT §1.6): numeric strings for ids, amounts
and counts; flags as 1/0, "1"/"0", "true"/"false"; foreign keys sent as 0 for "none" (become
null); ``category`` as an object, null or the string "standard"; nested ``category`` as an
object or an array; timestamps with an offset written with or without a colon (a timestamp
without offset is read in the chain's time zone; "" and "0000-00-00..." are null).

What is refused: a record that cannot be typed - not a JSON object, missing or invalid id
(not a positive integer), a bool where a number is expected, a non-numeric amount, a
fractional or out-of-int64 integer, a non-finite number, a list/object where a scalar is
expected, text that is not valid Unicode, a malformed nested list. Such a record goes to the
quarantine table verbatim with the reason; it is never dropped and never stops the batch.
Its child rows are not emitted.

Duplicate ids within one batch: among the records that could be typed, the **last occurrence
wins**; each earlier one goes to quarantine with reason "duplicate id <id>: ...". (A later
page holds the fresher read when the API shifts rows between pages.)

Schema drift: top-level fields (and fields of flattened objects such as ``status``, ``type``,
``item_type``, ``access``) that the schema does not know are kept, per row, as a JSON object
in ``extra`` and their names reported in ``NormalizedBatch.drift``. Unknown enum codes keep
their code, get the label ``unknown:<code>`` and are reported in
``NormalizedBatch.unknown_codes``; a string-enum value outside its documented list is kept
as sent and reported in ``NormalizedBatch.unknown_values`` (see enums.py for the E2/E3
conflict rule).

Speed: columns are built as Python lists and converted once with ``pa.array(..., type=...)``;
a column whose raw values already have the right Python type skips per-value coercion.
"""

import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.altegio.enums import ENUMS, TRANSACTION_TYPE, EnumTable
from pipelines.altegio.schema import TABLES

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_NONE_TYPE = type(None)

DEFAULT_ENDPOINTS: dict[str, str] = {
    "chains": "groups",
    "locations": "groups",
    "membership_types": "membership_types",
    "memberships": "memberships",
    "certificate_types": "certificate_types",
    "promotions": "promotion",
    "notification_templates": "notification_templates",
    "card_types": "card_types",
    "loyalty_transactions": "transactions",
}


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


class _Bad(Exception):
    """A value or record that cannot be typed; the message becomes the quarantine reason."""


class _NotObject:
    def __repr__(self) -> str:
        return "<not an object>"


_NOT_OBJECT = _NotObject()


# ---------------------------------------------------------------------------------------------
# Scalar coercion (slow path, one value at a time)


def _describe(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_int(v: object) -> int:
    if isinstance(v, bool):
        raise _Bad(f"bool where an integer is expected ({v!r})")
    if isinstance(v, int):
        out = v
    elif isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise _Bad(f"not an integer ({_describe(v)})")
        out = int(v)
    elif isinstance(v, str):
        s = v.strip()
        try:
            out = int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise _Bad(f"not an integer ({_describe(v)})") from None
            if not math.isfinite(f) or not f.is_integer():
                raise _Bad(f"not an integer ({_describe(v)})") from None
            out = int(f)
    else:
        raise _Bad(f"{type(v).__name__} where an integer is expected ({_describe(v)})")
    if not INT64_MIN <= out <= INT64_MAX:
        raise _Bad(f"integer out of int64 range ({_describe(v)})")
    return out


def _to_id(v: object) -> int:
    out = _to_int(v)
    if out <= 0:
        raise _Bad(f"invalid id ({_describe(v)})")
    return out


def _to_fk(v: object) -> int | None:
    out = _to_int(v)
    return None if out == 0 else out


def _to_float(v: object) -> float:
    if isinstance(v, bool):
        raise _Bad(f"bool where a number is expected ({v!r})")
    if isinstance(v, int | float):
        try:
            out = float(v)
        except OverflowError:
            raise _Bad(f"number out of float64 range ({_describe(v)})") from None
    elif isinstance(v, str):
        try:
            out = float(v.strip())
        except ValueError:
            raise _Bad(f"not a number ({_describe(v)})") from None
    else:
        raise _Bad(f"{type(v).__name__} where a number is expected ({_describe(v)})")
    if not math.isfinite(out):
        raise _Bad(f"non-finite number ({_describe(v)})")
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
    raise _Bad(f"not a flag ({_describe(v)})")


def _check_text(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(f"text is not valid unicode ({_describe(s)})") from None
    return s


def _to_str(v: object) -> str:
    if isinstance(v, str):
        return _check_text(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    raise _Bad(f"{type(v).__name__} where text is expected ({_describe(v)})")


def _to_json_text(v: object) -> str:
    """A string as sent; anything else as its JSON (used for loosely typed objects)."""
    if isinstance(v, str):
        return _check_text(v)
    return _check_text(to_json(v))


def _to_str_list(v: object) -> list[str]:
    if not isinstance(v, list):
        raise _Bad(f"{type(v).__name__} where a list is expected")
    return [_to_str(x) for x in v if x is not None]


def _parse_ts(v: object, tz: tzinfo) -> datetime | None:
    if not isinstance(v, str):
        raise _Bad(f"{type(v).__name__} where a timestamp is expected ({_describe(v)})")
    s = v.strip()
    if not s or s.startswith("0000-00-00"):
        return None
    try:
        out = datetime.fromisoformat(s)
    except ValueError:
        raise _Bad(f"not an ISO-8601 timestamp ({_describe(v)})") from None
    if out.tzinfo is None:
        out = out.replace(tzinfo=tz)
    try:
        return out.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _Bad(f"timestamp out of range ({_describe(v)})") from None


def _to_date(v: object) -> date | None:
    if not isinstance(v, str):
        raise _Bad(f"{type(v).__name__} where a date is expected ({_describe(v)})")
    s = v.strip()
    if not s or s.startswith("0000-00-00"):
        return None
    try:
        return date.fromisoformat(s[:10])
    except ValueError:
        raise _Bad(f"not an ISO date ({_describe(v)})") from None


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


class _Column:
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


def _fast(raw: list[Any], kind: str) -> _Column | None:
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
        return _Column(None, array)
    return _Column(raw, array)


def _coerce_column(
    raw: list[Any], kind: str, name: str, tz: tzinfo, bad: dict[int, str]
) -> _Column:
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
                raise _Bad("parent is not an object")
            out.append(convert(v))
        except _Bad as exc:
            out.append(None)
            bad.setdefault(i, f"{name}: {exc}")
    return _Column(out)


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


def _coerce_value(v: object, kind: str, tz: tzinfo, where: str) -> Any:
    if v is None:
        if kind == "id":
            raise _Bad(f"{where}: missing id")
        return None
    try:
        return _converter(kind, tz)(v)
    except _Bad as exc:
        raise _Bad(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Entity declarations

Src = tuple[str, tuple[str, ...], str]  # (column, path in the record, kind)


def _s(column: str, kind: str, *path: str) -> Src:
    return (column, path or (column,), kind)


@dataclass
class _Ctx:
    table: str
    chain_id: int | None
    extracted_at: datetime
    tz: tzinfo
    tz_name: str
    transaction_date: date | None
    endpoint: str
    window_day: date | None
    drift: dict[str, set[str]]
    unknown: dict[str, set[int | str]]
    # The days a created-date window covered; a membership created outside them is refused.
    window_days: frozenset[date] | None = None
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
RowHook = Callable[[dict[Any, Any], int, _Ctx, dict[str, _Column]], ChildRows]
ColumnHook = Callable[[dict[str, _Column], dict[int, str], _Ctx], None]


@dataclass(frozen=True)
class _Entity:
    table: str
    key: str  # the id column used for duplicate detection
    sources: tuple[Src, ...]
    extra_known: frozenset[str] = frozenset()
    nested_known: Mapping[str, frozenset[str]] = field(default_factory=dict)
    columns_hook: ColumnHook | None = None
    row_hook: RowHook | None = None
    inherit: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def known(self) -> frozenset[str]:
        return frozenset(p[0] for _, p, _ in self.sources) | self.extra_known


def _child(
    obj: object,
    spec: Sequence[Src],
    where: str,
    table: str,
    ctx: _Ctx,
    known_extra: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """One child row from a nested object; unknown keys go to its `extra`."""
    if not isinstance(obj, dict):
        raise _Bad(f"{where}: {type(obj).__name__} where an object is expected")
    row: dict[str, Any] = {}
    for column, path, kind in spec:
        v = _dig(obj, path)
        if v is _NOT_OBJECT:
            raise _Bad(f"{where}.{path[0]}: not an object")
        row[column] = _coerce_value(v, kind, ctx.tz, f"{where}.{'.'.join(path)}")
    known = {p[0] for _, p, _ in spec} | known_extra
    unknown = [k for k in obj if k not in known]
    if unknown:
        ctx.drift.setdefault(table, set()).update(str(k) for k in unknown)
        row["extra"] = _check_text(to_json({str(k): obj[k] for k in unknown}))
    return row


def _list(rec: Mapping[Any, Any], key: str, where: str | None = None) -> list[Any]:
    v = rec.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Bad(f"{where or key}: {type(v).__name__} where a list is expected")
    return v


_NODE_SPEC: tuple[Src, ...] = (
    _s("item_id", "id", "id"),
    _s("is_category", "bool"),
    _s("category_id", "fk"),
    _s("title", "str"),
    _s("online_sale_title", "str"),
    _s("is_chain", "bool"),
    _s("chain_price_min", "float"),
    _s("chain_price_max", "float"),
)
_NODE_KNOWN = frozenset(
    {"category", "service_id", "category_ids", "price_min", "price_max", "salon_group_id"}
)


def _balance_links(
    container: object, where: str, table: str, parent_col: str, parent_id: Any, ctx: _Ctx
) -> list[dict[str, Any]]:
    if container is None:
        return []
    if isinstance(container, list) and not container:
        return []  # PHP serialises an empty object as []
    if not isinstance(container, dict):
        raise _Bad(f"{where}: {type(container).__name__} where an object is expected")
    rows = []
    for i, link in enumerate(_list(container, "links", f"{where}.links")):
        lw = f"{where}.links[{i}]"
        if not isinstance(link, dict):
            raise _Bad(f"{lw}: {type(link).__name__} where an object is expected")
        node_key = "service" if isinstance(link.get("service"), dict) else "category"
        node = link.get(node_key)
        if not isinstance(node, dict):
            raise _Bad(f"{lw}: neither a service nor a category object")
        row = _child(node, _NODE_SPEC, f"{lw}.{node_key}", table, ctx, _NODE_KNOWN)
        if row["is_category"] is None:
            row["is_category"] = node_key == "category"
        row["count"] = _coerce_value(link.get("count"), "int", ctx.tz, f"{lw}.count")
        row["is_unlimited"] = _coerce_value(
            link.get("is_unlimited"), "bool", ctx.tz, f"{lw}.is_unlimited"
        )
        unknown = [k for k in link if k not in ("count", "is_unlimited", "service", "category")]
        if unknown:
            ctx.drift.setdefault(table, set()).update(str(k) for k in unknown)
            extra = orjson.loads(row["extra"]) if row.get("extra") else {}
            extra.update({f"link.{k}": link[k] for k in unknown})
            row["extra"] = _check_text(to_json(extra))
        row["id"] = row["item_id"]
        row["link_index"] = i
        row[parent_col] = parent_id
        rows.append(row)
    return rows


def _id_rows(
    values: Iterable[Any], where: str, parent_col: str, parent_id: Any, col: str, ctx: _Ctx
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, v in enumerate(values):
        item = _coerce_value(v, "id", ctx.tz, f"{where}[{i}]")
        if item in seen:
            continue
        seen.add(item)
        rows.append({"id": item, col: item, parent_col: parent_id})
    return rows


# --- membership types


def _membership_type_rows(
    rec: dict[Any, Any], idx: int, ctx: _Ctx, cols: dict[str, _Column]
) -> ChildRows:
    tid = cols["id"].values[idx]
    locations = _list(rec, "attached_location_ids") + _list(rec, "attached_salon_ids")
    out: ChildRows = {
        "membership_type_locations": [
            (idx, r)
            for r in _id_rows(
                locations, "attached_location_ids", "membership_type_id", tid, "location_id", ctx
            )
        ],
        "membership_type_balance_links": [
            (idx, r)
            for r in _balance_links(
                rec.get("balance_container"),
                "balance_container",
                "membership_type_balance_links",
                "membership_type_id",
                tid,
                ctx,
            )
        ],
        "membership_type_availability": [],
    }
    avail = out["membership_type_availability"]
    for ri, rule in enumerate(_list(rec, "availability")):
        w = f"availability[{ri}]"
        if not isinstance(rule, dict):
            raise _Bad(f"{w}: {type(rule).__name__} where an object is expected")
        unknown = [k for k in rule if k not in ("week_days", "intervals")]
        if unknown:
            ctx.drift.setdefault("membership_type_availability", set()).update(map(str, unknown))
        intervals: list[tuple[int, int | None, int | None]] = []
        for ii, iv in enumerate(_list(rule, "intervals", f"{w}.intervals")):
            iw = f"{w}.intervals[{ii}]"
            if not isinstance(iv, dict):
                raise _Bad(f"{iw}: {type(iv).__name__} where an object is expected")
            start = _coerce_value(iv.get("from"), "int", ctx.tz, f"{iw}.from")
            end = _coerce_value(iv.get("to"), "int", ctx.tz, f"{iw}.to")
            intervals.append((ii, start, end))
        days = []
        for di, d in enumerate(_list(rule, "week_days", f"{w}.week_days")):
            day = _coerce_value(d, "int", ctx.tz, f"{w}.week_days[{di}]")
            if day is None or not 1 <= day <= 7:
                raise _Bad(f"{w}.week_days[{di}]: not a week day 1-7 ({_describe(d)})")
            if day not in days:
                days.append(day)
        extra = to_json({str(k): rule[k] for k in unknown}) if unknown else None
        for day in days:
            for ii, start, end in intervals or [(0, None, None)]:
                avail.append(
                    (
                        idx,
                        {
                            "id": ri,
                            "membership_type_id": tid,
                            "rule_index": ri,
                            "week_day": day,
                            "interval_index": ii,
                            "from_seconds": start,
                            "to_seconds": end,
                            "extra": extra,
                        },
                    )
                )
    return out


_MEMBERSHIP_TYPE_SOURCES: tuple[Src, ...] = (
    _s("id", "id"),
    _s("salon_group_id", "int"),
    _s("title", "str"),
    _s("category_id", "fk"),
    _s("category", "json"),
    _s("cost", "float"),
    _s("chain_price_min", "float"),
    _s("chain_price_max", "float"),
    _s("period", "int"),
    _s("period_unit_id", "int"),
    _s("allow_freeze", "bool"),
    _s("freeze_limit", "int"),
    _s("freeze_limit_unit_id", "int"),
    _s("is_booking_when_frozen_allowed", "bool"),
    _s("is_allow_empty_code", "bool"),
    _s("is_united_balance", "bool"),
    _s("is_united_balance_unlimited", "bool"),
    _s("united_balance_services_count", "int"),
    _s("is_code_required", "bool"),
    _s("balance_edit_type_id", "int"),
    _s("expiration_type_id", "int"),
    _s("expiration_type_title", "str"),
    _s("is_chain", "bool"),
    _s("weight", "int"),
    _s("abonements_count", "int"),
    _s("is_online_sale_enabled", "bool"),
    _s("online_sale_title", "str"),
    _s("online_sale_description", "str"),
    _s("online_sale_price", "float"),
    _s("online_sale_image", "str"),
    _s("service_price_correction", "bool"),
    _s("autoactivation_time", "int"),
    _s("autoactivation_time_unit_id", "int"),
    _s("is_archived", "bool"),
    _s("date_archived", "ts"),
    _s("slug", "str"),
)

# --- memberships


def _memberships_columns(cols: dict[str, _Column], bad: dict[int, str], ctx: _Ctx) -> None:
    tz = ctx.tz
    days: list[date | None] = []
    for i, created in enumerate(cols["created_date"].values):
        if created is None:
            days.append(None)
            bad.setdefault(i, "created_date: missing (needed for the created_day partition)")
        else:
            day = created.astimezone(tz).date()
            days.append(day)
            if ctx.window_days is not None and day not in ctx.window_days:
                bad.setdefault(
                    i,
                    f"created_date {created.isoformat()} is {day} in {ctx.tz_name}, outside "
                    f"the requested window {ctx.window_label}",
                )
    cols["created_day"] = _Column(days)


def _membership_rows(
    rec: dict[Any, Any], idx: int, ctx: _Ctx, cols: dict[str, _Column]
) -> ChildRows:
    mid = cols["id"].values[idx]
    links = _balance_links(
        rec.get("balance_container"),
        "balance_container",
        "membership_balance_links",
        "membership_id",
        mid,
        ctx,
    )
    return {"membership_balance_links": [(idx, r) for r in links]}


_MEMBERSHIP_SOURCES: tuple[Src, ...] = (
    _s("id", "id"),
    _s("number", "str"),
    _s("balance_string", "str"),
    _s("is_frozen", "bool"),
    _s("freeze_period", "int"),
    _s("period", "int"),
    _s("period_unit_id", "int"),
    _s("created_date", "ts"),
    _s("activated_date", "ts"),
    _s("expiration_date", "ts"),
    _s("is_united_balance", "bool"),
    _s("is_united_balance_unlimited", "bool"),
    _s("united_balance_services_count", "int"),
    _s("goods_transaction_id", "fk"),
    _s("slug", "str"),
    _s("status_id", "int", "status", "id"),
    _s("status_title", "str", "status", "title"),
    _s("status_extended_title", "str", "status", "extended_title"),
    _s("status_slug", "str", "status", "slug"),
    _s("status_category", "json", "status", "category"),
    _s("membership_type_id", "int", "type", "id"),
    _s("membership_type_title", "str", "type", "title"),
    _s("membership_type_cost", "float", "type", "cost"),
    _s("membership_type_expiration_type_id", "int", "type", "expiration_type_id"),
    _s("membership_type_expiration_type_title", "str", "type", "expiration_type_title"),
)

# --- certificate types


def _certificate_columns(cols: dict[str, _Column], bad: dict[int, str], ctx: _Ctx) -> None:
    top = cols["item_type_id"].values
    nested = cols.pop("_item_type_obj_id").values
    cols["item_type_id"] = _Column(
        [a if a is not None else b for a, b in zip(top, nested, strict=False)]
    )


def _certificate_rows(
    rec: dict[Any, Any], idx: int, ctx: _Ctx, cols: dict[str, _Column]
) -> ChildRows:
    cid = cols["id"].values[idx]
    return {
        "certificate_type_services": [
            (idx, r)
            for r in _id_rows(
                _list(rec, "service_ids"),
                "service_ids",
                "certificate_type_id",
                cid,
                "service_id",
                ctx,
            )
        ],
        "certificate_type_locations": [
            (idx, r)
            for r in _id_rows(
                _list(rec, "salon_ids"), "salon_ids", "certificate_type_id", cid, "location_id", ctx
            )
        ],
    }


_CERTIFICATE_SOURCES: tuple[Src, ...] = (
    _s("id", "id"),
    _s("company_group_id", "int"),
    _s("title", "str"),
    _s("balance", "float"),
    _s("is_multi", "bool"),
    _s("category_id", "fk"),
    _s("weight", "int"),
    _s("item_type_id", "int"),
    _s("_item_type_obj_id", "int", "item_type", "id"),
    _s("item_type_title", "str", "item_type", "title"),
    _s("expiration_type_id", "int"),
    _s("expiration_date", "ts"),
    _s("expiration_timeout", "int"),
    _s("expiration_timeout_unit_id", "int"),
    _s("balance_edit_type_id", "int"),
    _s("is_allow_empty_code", "bool"),
    _s("is_serial_number_limited", "bool"),
    _s("is_archived", "bool"),
    _s("date_archived", "ts"),
    _s("online_sale_is_enabled", "bool"),
    _s("online_sale_title", "str"),
    _s("online_sale_description", "str"),
    _s("online_sale_price", "float"),
    _s("online_sale_image", "str"),
    _s("released_total", "int"),
)

# --- promotions

_RULE_SPEC: tuple[Src, ...] = (
    _s("id", "id"),
    _s("parameter", "float"),
    _s("value", "float"),
    _s("loyalty_program_id", "int"),
    _s("loyalty_type_id", "int"),
    _s("service_id", "fk"),
)
_ITEM_SPEC: tuple[Src, ...] = (
    _s("id", "id"),
    _s("title", "str"),
    _s("is_service", "bool"),
    _s("is_category", "bool"),
)
_COMPANY_SPEC: tuple[Src, ...] = (
    _s("id", "id"),
    _s("title", "str"),
    _s("country", "str"),
    _s("country_id", "int"),
    _s("city", "str"),
    _s("city_id", "int"),
    _s("phone", "str"),
    _s("timezone", "str"),
    _s("address", "str"),
    _s("coordinate_lat", "float"),
    _s("coordinate_lng", "float"),
)
_CARD_TYPE_SPEC: tuple[Src, ...] = (_s("id", "id"), _s("title", "str"))


def _promotion_rows(
    rec: dict[Any, Any], idx: int, ctx: _Ctx, cols: dict[str, _Column]
) -> ChildRows:
    pid = cols["id"].values[idx]
    out: ChildRows = {}
    for table, key, spec in (
        ("promotion_rules", "rules", _RULE_SPEC),
        ("promotion_applicable_items", "applicable_items", _ITEM_SPEC),
        ("promotion_locations", "companies", _COMPANY_SPEC),
        ("promotion_card_types", "loyalty_card_types", _CARD_TYPE_SPEC),
    ):
        rows = out.setdefault(table, [])
        seen: set[tuple[Any, ...]] = set()
        for i, obj in enumerate(_list(rec, key)):
            row = _child(obj, spec, f"{key}[{i}]", table, ctx)
            row["promotion_id"] = pid
            dedupe = (row["id"], row.get("is_service"), row.get("is_category"))
            if dedupe in seen:
                continue
            seen.add(dedupe)
            rows.append((idx, row))
    # E13: the detail object has no loyalty_type_id; its rules carry it.
    if cols["loyalty_type_id"].values[idx] is None:
        for _, rule in out["promotion_rules"]:
            if rule.get("loyalty_type_id") is not None:
                cols["loyalty_type_id"].values[idx] = rule["loyalty_type_id"]
                cols["loyalty_type_id"].array = None
                break
    promotion_type = rec.get("type")
    if isinstance(promotion_type, str) and ENUMS["promotion_type"].is_known(promotion_type):
        learned = ctx.learned_labels.setdefault("loyalty_type", {})
        codes = [cols["loyalty_type_id"].values[idx]]
        codes += [rule.get("loyalty_type_id") for _, rule in out["promotion_rules"]]
        for code in codes:
            if isinstance(code, int):
                learned.setdefault(code, promotion_type)
    return out


def _promotion_columns(cols: dict[str, _Column], bad: dict[int, str], ctx: _Ctx) -> None:
    # E14: value_unit_id is only a fallback for the documented string value_unit.
    unit = cols["value_unit"]
    if any(v is None for v in unit.values):
        codes = cols["value_unit_id"].values
        enum = ENUMS["value_unit_code"]
        unit.values = [
            v if v is not None or c is None else enum.label(c)
            for v, c in zip(unit.values, codes, strict=False)
        ]
        unit.array = None


_PROMOTION_SOURCES: tuple[Src, ...] = (
    _s("id", "id"),
    _s("group_id", "int"),
    _s("title", "str"),
    _s("type", "str"),
    _s("loyalty_type_id", "int"),
    _s("item_type_id", "int"),
    _s("service_item_type", "str"),
    _s("good_item_type", "str"),
    _s("value_unit_id", "int"),
    _s("value_unit", "str"),
    _s("usage_limit", "int"),
    _s("visit_multiplicity", "int"),
    _s("sold_items_multiplicity", "int"),
    _s("current_package_progress", "int"),
    _s("allowed_usages_amount", "int"),
    _s("expiration_timeout", "int"),
    _s("expiration_timeout_unit", "str"),
    _s("expiration_notification_timeout", "int"),
    _s("params_source_type", "str"),
    _s("history_start_date", "date"),
    _s("first_transaction_date", "date"),
    _s("on_changed_notification_template_id", "fk"),
    _s("on_expiration_notification_template_id", "fk"),
)

# --- transactions


def _transaction_columns(cols: dict[str, _Column], bad: dict[int, str], ctx: _Ctx) -> None:
    top = cols["type_id"]
    nested = cols.pop("_type_obj_id")
    if any(v is None for v in top.values):
        cols["type_id"] = _Column(
            [a if a is not None else b for a, b in zip(top.values, nested.values, strict=False)]
        )
    codes = cols["type_id"].values
    mapping = {c: _direction(c) for c in set(codes)}
    cols["direction"] = _Column([mapping[c] for c in codes])


def _direction(code: int | None) -> str | None:
    value = None if code is None else TRANSACTION_TYPE.values.get(code)
    return None if value is None else value.direction


_TRANSACTION_SOURCES: tuple[Src, ...] = (
    _s("id", "id"),
    _s("visit_id", "fk"),
    _s("status_id", "int"),
    _s("amount", "float"),
    _s("type_id", "int"),
    _s("_type_obj_id", "int", "type", "id"),
    _s("type_title", "str", "type", "title"),
    _s("card_id", "fk"),
    _s("program_id", "fk"),
    _s("certificate_id", "fk"),
    _s("abonement_id", "fk"),
    _s("salon_group_id", "int"),
    _s("item_id", "fk"),
    _s("item_type_id", "int"),
    _s("item_record_id", "fk"),
    _s("goods_transaction_id", "fk"),
    _s("services_transaction_id", "fk"),
    _s("is_discount", "bool"),
    _s("is_loyalty_withdraw", "bool"),
)

# --- chains + locations (GET /groups)

_ACCESS_FLAGS = tuple(
    f.name for f in TABLES["chains"].schema if f.name.endswith("_access") and f.name != "title"
)

_LOCATION_SPEC: tuple[Src, ...] = (
    _s("id", "id"),
    _s("title", "str"),
    _s("public_title", "str"),
    _s("business_group_id", "int"),
    _s("business_type_id", "int"),
    _s("country_id", "int"),
    _s("country", "str"),
    _s("city_id", "int"),
    _s("city", "str"),
    _s("timezone", "float"),
    _s("timezone_name", "str"),
    _s("address", "str"),
    _s("zip", "str"),
    _s("phone", "str"),
    _s("phones", "strlist"),
    _s("site", "str"),
    _s("logo", "str"),
    _s("currency_short_title", "str"),
    _s("coordinate_lat", "float"),
    _s("coordinate_lon", "float"),
    _s("active", "bool"),
    _s("allow_delete_record", "bool"),
    _s("allow_change_record", "bool"),
)


def _chain_rows(rec: dict[Any, Any], idx: int, ctx: _Ctx, cols: dict[str, _Column]) -> ChildRows:
    cid = cols["chain_id"].values[idx]
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: set[int] = set()
    timezone = None
    for i, company in enumerate(_list(rec, "companies")):
        row = _child(company, _LOCATION_SPEC, f"companies[{i}]", "locations", ctx)
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        if timezone is None and row["timezone_name"]:
            timezone = row["timezone_name"]
        row["chain_id"] = cid
        rows.append((idx, row))
    cols.setdefault("timezone", _Column([None] * len(cols["chain_id"].values)))
    cols.setdefault("locations_count", _Column([None] * len(cols["chain_id"].values)))
    cols["timezone"].values[idx] = timezone
    cols["locations_count"].values[idx] = len(rows)
    return {"locations": rows}


ENTITIES: dict[str, _Entity] = {
    e.table: e
    for e in (
        _Entity(
            "membership_types",
            "id",
            _MEMBERSHIP_TYPE_SOURCES,
            extra_known=frozenset(
                {"attached_location_ids", "attached_salon_ids", "availability", "balance_container"}
            ),
            row_hook=_membership_type_rows,
        ),
        _Entity(
            "memberships",
            "id",
            _MEMBERSHIP_SOURCES,
            extra_known=frozenset({"balance_container", "status", "type"}),
            nested_known={
                "status": frozenset({"id", "title", "extended_title", "slug", "category"})
            },
            columns_hook=_memberships_columns,
            row_hook=_membership_rows,
            inherit={"membership_balance_links": {"created_day": "created_day"}},
        ),
        _Entity(
            "certificate_types",
            "id",
            _CERTIFICATE_SOURCES,
            extra_known=frozenset({"item_type", "service_ids", "salon_ids"}),
            nested_known={"item_type": frozenset({"id", "title"})},
            columns_hook=_certificate_columns,
            row_hook=_certificate_rows,
        ),
        _Entity(
            "promotions",
            "id",
            _PROMOTION_SOURCES,
            extra_known=frozenset(
                {
                    "rules",
                    "applicable_items",
                    "companies",
                    "loyalty_card_types",
                    "on_changed_notification_template",
                    "on_expiration_notification_template",
                }
            ),
            columns_hook=_promotion_columns,
            row_hook=_promotion_rows,
        ),
        _Entity(
            "notification_templates",
            "id",
            (_s("id", "id"), _s("type", "str"), _s("message_type", "str"), _s("body", "str")),
        ),
        _Entity(
            "card_types",
            "id",
            (_s("id", "id"), _s("title", "str"), _s("salon_group_id", "int")),
            extra_known=frozenset({"salon_group"}),
        ),
        _Entity(
            "loyalty_transactions",
            "id",
            _TRANSACTION_SOURCES,
            extra_known=frozenset({"type"}),
            nested_known={"type": frozenset({"id", "title"})},
            columns_hook=_transaction_columns,
        ),
        _Entity(
            "chains",
            "chain_id",
            (
                _s("chain_id", "id", "id"),
                _s("title", "str"),
                *(_s(f, "bool", "access", f) for f in _ACCESS_FLAGS),
            ),
            extra_known=frozenset({"companies", "access"}),
            nested_known={"access": frozenset(_ACCESS_FLAGS)},
            row_hook=_chain_rows,
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# Assembly


def _label_specs(table: str) -> list[tuple[str, str, EnumTable, str | None]]:
    """(code column, label column, enum, title column) for every decoded code of `table`."""
    schema = TABLES[table].schema
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


_LABELS: dict[str, list[tuple[str, str, EnumTable, str | None]]] = {
    name: _label_specs(name) for name in TABLES
}
_CODE_COLUMNS: dict[str, list[tuple[str, EnumTable]]] = {
    name: [
        (f.name, ENUMS[f.metadata[b"enum"].decode()])
        for f in spec.schema
        if f.metadata and b"enum" in f.metadata
    ]
    for name, spec in TABLES.items()
}


def _build_table(table: str, cols: dict[str, _Column], n: int, ctx: _Ctx) -> pa.Table:
    """Decode labels, stamp lineage and convert every column once to its declared type."""
    for code_col, label_col, enum, title_col in _LABELS[table]:
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
        cols[label_col] = _Column(labels)
    for code_col, enum in _CODE_COLUMNS[table]:
        learned = ctx.learned_labels.get(enum.name, {})
        unknown = {
            c for c in set(cols[code_col].values) if not enum.is_known(c) and c not in learned
        }
        if unknown:
            ctx.unknown.setdefault(f"{table}.{code_col}", set()).update(unknown)
    constants: dict[str, Any] = {
        "chain_id": ctx.chain_id,
        "transaction_date": ctx.transaction_date,
        "_extracted_at": ctx.extracted_at,
        "_source_endpoint": ctx.endpoint,
    }
    arrays = []
    for f in TABLES[table].schema:
        column = cols.get(f.name)
        if column is None:
            arrays.append(pa.repeat(pa.scalar(constants.get(f.name), type=f.type), n))
        elif column.array is not None and len(column.array) == n:
            arrays.append(column.array)
        else:
            arrays.append(pa.array(column.values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=TABLES[table].schema)


def _rows_to_columns(rows: list[dict[str, Any]], table: str) -> dict[str, _Column]:
    names = [f.name for f in TABLES[table].schema]
    return {
        name: _Column([r.get(name) for r in rows])
        for name in names
        if not rows or name == "extra" or any(name in r for r in rows)
    }


def _quarantine_rows(
    records: Sequence[object],
    reasons: Mapping[int, str],
    ids: Mapping[int, Any],
    partitions: Mapping[int, str],
    ctx: _Ctx,
) -> pa.Table:
    order = sorted(reasons)
    n = len(order)
    day = ctx.transaction_date or ctx.window_day
    default_partition = day.isoformat() if day else "all"
    spec = TABLES["quarantine"].schema
    data = {
        "source_table": [ctx.table] * n,
        "chain_id": [ctx.chain_id] * n,
        "partition_key": [partitions.get(i, default_partition) for i in order],
        "id": [ids.get(i) for i in order],
        "record_index": order,
        "raw_json": [_safe_text(to_json(records[i])) for i in order],
        "reason": [_safe_text(reasons[i]) for i in order],
        "quarantined_at": [ctx.extracted_at] * n,
        "_source_endpoint": [ctx.endpoint] * n,
    }
    return pa.Table.from_arrays([pa.array(data[f.name], type=f.type) for f in spec], schema=spec)


def _safe_text(s: str) -> str:
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _run(entity: _Entity, records: Sequence[object], ctx: _Ctx) -> NormalizedBatch:
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

    cols: dict[str, _Column] = {}
    cache: dict[str, list[Any]] = {}
    for column, path, kind in entity.sources:
        cols[column] = _coerce_column(_extract(recs, path, cache), kind, column, ctx.tz, bad)
    if entity.columns_hook is not None:
        entity.columns_hook(cols, bad, ctx)

    children: ChildRows = {name: [] for name in _child_tables(entity)}
    if entity.row_hook is not None:
        for i, rec in enumerate(recs):
            if i in bad:
                continue
            try:
                for name, rows in entity.row_hook(rec, i, ctx, cols).items():
                    children[name].extend(rows)
            except _Bad as exc:
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
    known = entity.known
    flags = list(map(known.issuperset, recs))
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
        rec = recs[i]
        unknown = {str(k): rec[k] for k in rec if k not in known}
        for obj_key, sub_known in entity.nested_known.items():
            obj = rec.get(obj_key)
            if isinstance(obj, dict) and not sub_known.issuperset(obj):
                unknown.update({f"{obj_key}.{k}": obj[k] for k in obj if k not in sub_known})
        if unknown:
            try:
                extras[i] = _check_text(to_json(unknown))
            except _Bad as exc:
                bad.setdefault(i, f"extra: {exc}")
            if i not in bad:
                ctx.drift.setdefault(entity.table, set()).update(unknown)
    cols["extra"] = _Column(extras, None if suspects else pa.nulls(n, pa.string()))

    partitions: dict[int, str] = {}
    if "created_day" in cols:
        days = cols["created_day"].values
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
    if bad:
        mask = pa.array([i not in bad for i in range(n)], type=pa.bool_())
        for c in cols.values():
            if c.array is not None and len(c.array) == n:
                c.array = c.array.filter(mask)
                c._values = None
            else:
                c.values = [c.values[i] for i in keep]
    tables = {entity.table: _build_table(entity.table, cols, len(keep), ctx)}
    for name, rows in children.items():
        kept = [(p, r) for p, r in rows if p not in bad]
        for column, parent_column in entity.inherit.get(name, {}).items():
            parent_values = cols_before_filter(cols, parent_column, keep, n)
            for p, r in kept:
                r[column] = parent_values[p]
        child_cols = _rows_to_columns([r for _, r in kept], name)
        tables[name] = _build_table(name, child_cols, len(kept), ctx)
    return NormalizedBatch(
        tables=tables,
        quarantine=_quarantine_rows(records, reasons, ids, partitions, ctx),
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


def cols_before_filter(
    cols: dict[str, _Column], name: str, keep: list[int], n: int
) -> dict[int, Any]:
    """Map original record position -> value of a (possibly filtered) parent column."""
    values = cols[name].values
    return {orig: values[j] for j, orig in enumerate(keep)}


def _child_tables(entity: _Entity) -> tuple[str, ...]:
    return tuple(t.name for t in TABLES.values() if t.parent == entity.table)


def _tz(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


def normalize(
    table: str,
    records: Iterable[object],
    *,
    chain_id: int,
    extracted_at: datetime,
    chain_timezone: str,
    transaction_date: date | None = None,
    source_endpoint: str | None = None,
    window_day: date | None = None,
    window_days: Collection[date] | None = None,
) -> NormalizedBatch:
    """Type one batch of raw records of one entity; one output row = one API record.

    `table` is a main table name (membership_types, memberships, certificate_types,
    promotions, notification_templates, card_types, loyalty_transactions). The result holds
    that table and its child tables; every record is either a row of the main table or a row
    of the quarantine table (never both, never neither). `window_day` (optional) is the
    day window the records were read for; it names the quarantine partition of a record
    whose own partition day cannot be read. `window_days` (memberships) are the days a
    created-date window covered: a record created on another day is quarantined (its
    partition would belong to another window), under the partition key "<first>..<last>".
    """
    entity = ENTITIES.get(table)
    if entity is None or table == "chains":
        raise ValueError(
            f"normalize() cannot build {table!r}; use one of "
            f"{sorted(t for t in ENTITIES if t != 'chains')} (chains: normalize_groups)"
        )
    if table == "loyalty_transactions" and transaction_date is None:
        raise ValueError("loyalty_transactions needs transaction_date (the requested day)")
    if extracted_at.tzinfo is None:
        raise ValueError("extracted_at must be timezone-aware")
    ctx = _Ctx(
        table=table,
        chain_id=chain_id,
        extracted_at=extracted_at.astimezone(UTC),
        tz=_tz(chain_timezone),
        tz_name=chain_timezone,
        transaction_date=transaction_date if table == "loyalty_transactions" else None,
        endpoint=source_endpoint or DEFAULT_ENDPOINTS[table],
        window_day=window_day,
        drift={},
        unknown={},
        window_days=frozenset(window_days) if window_days is not None else None,
    )
    return _run(entity, list(records), ctx)


def normalize_groups(
    records: Iterable[object], extracted_at: datetime, *, source_endpoint: str | None = None
) -> NormalizedBatch:
    """Type the `GET /groups` records: one `chains` row per chain, one `locations` row per
    location in its `companies[]`. Quarantined records carry chain_id null."""
    if extracted_at.tzinfo is None:
        raise ValueError("extracted_at must be timezone-aware")
    ctx = _Ctx(
        table="chains",
        chain_id=None,
        extracted_at=extracted_at.astimezone(UTC),
        tz=UTC,
        tz_name="UTC",
        transaction_date=None,
        endpoint=source_endpoint or DEFAULT_ENDPOINTS["chains"],
        window_day=None,
        drift={},
        unknown={},
    )
    return _run(ENTITIES["chains"], list(records), ctx)
