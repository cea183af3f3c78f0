"""Model inputs checked as fal's pydantic apps check them, errors in fal's 422 shape.

A schema is a tuple of `Field`s; `validate` returns the input with defaults filled in,
or raises `ValidationFailed` whose detail lists every problem as
`{"loc": ["body", field], "msg": …, "type": …}` (pydantic v1 wording, as fal answers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nxs.errors import ValidationFailed
from nxs.falspec import IMAGE_SIZES

MAX_SIDE = 4096
MISSING = object()


@dataclass(frozen=True)
class Field:
    """One input field: its kind (str/int/float/bool/enum/image_size/url), bounds, default;
    a `url` is a string the model fetches (`media.py`)."""

    name: str
    kind: str
    default: Any = MISSING
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] = ()


class FieldError(Exception):
    def __init__(self, msg: str, kind: str, ctx: dict[str, Any] | None = None, sub: str = ""):
        super().__init__(msg)
        self.msg, self.kind, self.ctx, self.sub = msg, kind, ctx, sub


def _as_int(value: Any) -> int:
    number = _finite(value, "integer")
    if number != int(number):
        raise FieldError("value is not a valid integer", "type_error.integer")
    return int(number)


def _as_float(value: Any) -> float:
    return _finite(value, "float")


def _finite(value: Any, kind: str) -> float:
    """A finite number from a number or a numeric string (never a bool)."""
    invalid = FieldError(f"value is not a valid {kind}", f"type_error.{kind}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:  # OverflowError: an int past float's range
        raise invalid from exc
    if not math.isfinite(number):
        raise invalid
    return number


def _as_bool(value: Any) -> bool:
    truths, falsities = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
    if isinstance(value, bool):
        return value
    text = str(value).lower() if isinstance(value, int | str) else ""
    if text in truths or text in falsities:
        return text in truths
    raise FieldError("value could not be parsed to a boolean", "type_error.bool")


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise FieldError("str type expected", "type_error.str")


def _enum_failure(choices: tuple[str, ...]) -> FieldError:
    permitted = ", ".join(repr(choice) for choice in choices)
    return FieldError(
        f"value is not a valid enumeration member; permitted: {permitted}",
        "type_error.enum",
        {"enum_values": list(choices)},
    )


def _as_choice(value: Any, choices: tuple[str, ...]) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if text not in choices:
        raise _enum_failure(choices)
    return str(text)


def _as_size(value: Any) -> dict[str, int]:
    if isinstance(value, dict):
        size = {}
        for side in ("width", "height"):
            if side not in value:
                raise FieldError("field required", "value_error.missing", sub=side)
            try:
                size[side] = _bounded(_as_int(value[side]), 1, MAX_SIDE)
            except FieldError as error:
                error.sub = side
                raise
        return size
    if isinstance(value, str) and value in IMAGE_SIZES:
        width, height = IMAGE_SIZES[value]
        return {"width": width, "height": height}
    raise _enum_failure(tuple(IMAGE_SIZES))


def _bounded(number: Any, ge: float | None, le: float | None) -> Any:
    if ge is not None and number < ge:
        msg = f"ensure this value is greater than or equal to {ge:g}"
        raise FieldError(msg, "value_error.number.not_ge", {"limit_value": ge})
    if le is not None and number > le:
        msg = f"ensure this value is less than or equal to {le:g}"
        raise FieldError(msg, "value_error.number.not_le", {"limit_value": le})
    return number


def _convert(field: Field, value: Any) -> Any:
    if field.kind == "int":
        return _bounded(_as_int(value), field.ge, field.le)
    if field.kind == "float":
        return _bounded(_as_float(value), field.ge, field.le)
    if field.kind == "bool":
        return _as_bool(value)
    if field.kind == "enum":
        return _as_choice(value, field.choices)
    if field.kind == "image_size":
        return _as_size(value)
    return _as_str(value)


def _error(field: Field, error: FieldError) -> dict[str, Any]:
    loc = ["body", field.name, *([error.sub] if error.sub else [])]
    entry: dict[str, Any] = {"loc": loc, "msg": error.msg, "type": error.kind}
    if error.ctx:
        entry["ctx"] = error.ctx
    return entry


def validate(schema: tuple[Field, ...], body: dict[str, Any]) -> dict[str, Any]:
    """The input with defaults applied; raises ValidationFailed listing every error."""
    clean: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for field in schema:
        value = body.get(field.name)
        if value is None:
            if field.default is MISSING:
                errors.append(_error(field, FieldError("field required", "value_error.missing")))
            elif field.default is not None:
                clean[field.name] = _convert(field, field.default)
            continue
        try:
            clean[field.name] = _convert(field, value)
        except FieldError as error:
            errors.append(_error(field, error))
    if errors:
        raise ValidationFailed(errors)
    return clean
