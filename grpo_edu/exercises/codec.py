"""Plain data between the student's process and the grader: values as JSON, framed on a pipe.

What crosses from a student's process to the grader is data only: JSON (numbers, strings,
lists, objects) and, for trained weights, a safetensors blob. Nothing is unpickled, nothing
the student's code returns is called. ``encode`` (run beside the student's code) turns a value
into JSON-able data; ``decode`` (run in the grader) checks that data against limits and
rebuilds tensors, tuples, lists, numpy scalars and arrays. A value of another type arrives as an
``Opaque``: its type name and a truncated ``repr`` computed beside the student's code, never an
object the grader could call.

Frames: ``write_frame`` / ``FrameReader`` put length-prefixed records on a pipe (8-byte length,
1-byte kind: ``J`` for JSON, ``B`` for bytes); ``FrameReader`` stops at ``limit`` bytes.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

KIND = "__kind__"
DTYPES = {
    name: getattr(torch, name)
    for name in (
        "float32",
        "float64",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
    )
}
"""Tensor dtypes that travel; any other arrives as an ``Opaque``."""
MAX_ELEMENTS = 2_000_000
"""Numbers one decoded value may hold in all."""
MAX_DEPTH = 32
MAX_TEXT = 20_000
"""Characters kept of a string (longer ones are cut, with a note)."""


class DecodeError(ValueError):
    """The data breaks the format or its limits (the grader treats it as a broken channel)."""


@dataclass(frozen=True)
class Opaque:
    """A value the channel does not carry: its type, and its repr as the student's process saw it."""

    type_name: str
    text: str

    def __repr__(self) -> str:
        return self.text


# ------------------------------------------------------------------ encode (student side)
def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"... ({len(text)} characters)"


def _opaque(x: Any) -> dict:
    try:
        text = _short(repr(x))
    except Exception as err:  # a hostile __repr__
        text = f"<repr raised {type(err).__name__}>"
    t = type(x)
    return {KIND: "opaque", "type": f"{t.__module__}.{t.__qualname__}", "repr": text}


def encode(x: Any, depth: int = 0) -> Any:
    """JSON-able data for ``x`` (tensors keep dtype and shape; tuples stay tuples)."""
    if depth > MAX_DEPTH:
        return _opaque(x)
    t = type(x)
    if x is None or t in (bool, int, str):
        return _short(x) if t is str else x
    if t is float:
        return x if math.isfinite(x) else {KIND: "float", "value": repr(x)}
    if isinstance(x, torch.Tensor):
        name = str(x.dtype).removeprefix("torch.")
        if name not in DTYPES or x.is_sparse or x.numel() > MAX_ELEMENTS:
            return _opaque(x)
        try:
            flat = x.detach().cpu().reshape(-1)
            data = (flat.float() if name == "bfloat16" else flat).tolist()
        except Exception:
            return _opaque(x)
        return {KIND: "tensor", "dtype": name, "shape": list(x.shape), "data": _floats(data)}
    if t in (list, tuple):
        items = [encode(v, depth + 1) for v in x]
        return items if t is list else {KIND: "tuple", "items": items}
    if isinstance(x, np.ndarray) and x.dtype.name in DTYPES and x.size <= MAX_ELEMENTS:
        data = x.reshape(-1).tolist()
        return {
            KIND: "ndarray",
            "dtype": x.dtype.name,
            "shape": list(x.shape),
            "data": _floats(data),
        }
    if isinstance(x, np.generic) and x.dtype.name in DTYPES:
        return {KIND: "numpy", "dtype": x.dtype.name, "value": encode(x.item())}
    if t is dict and all(type(k) is str for k in x):
        return {KIND: "dict", "items": [[k, encode(v, depth + 1)] for k, v in x.items()]}
    return _opaque(x)


def _floats(data: list) -> list:
    """Non-finite floats as strings, so the JSON stays standard."""
    return [v if type(v) is not float or math.isfinite(v) else repr(v) for v in data]


# --------------------------------------------------------------------- decode (grader side)
def decode(data: Any) -> Any:
    """The value that ``data`` (from ``encode``, read from an untrusted peer) describes."""
    budget = [MAX_ELEMENTS]
    try:
        return _decode(data, 0, budget)
    except DecodeError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError, RuntimeError) as err:
        raise DecodeError(f"malformed value ({type(err).__name__}: {err})") from None


def _spend(budget: list[int], n: int) -> None:
    budget[0] -= n
    if budget[0] < 0:
        raise DecodeError(f"value holds more than {MAX_ELEMENTS} numbers")


def _decode(d: Any, depth: int, budget: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise DecodeError(f"value nested deeper than {MAX_DEPTH}")
    _spend(budget, 1)
    t = type(d)
    if d is None or t in (bool, int, float):
        return d
    if t is str:
        return d[: MAX_TEXT + 40]
    if t is list:
        return [_decode(v, depth + 1, budget) for v in d]
    if t is not dict or type(d.get(KIND)) is not str:
        raise DecodeError(f"unexpected {t.__name__} in a value")
    kind = d[KIND]
    if kind == "float":
        return float(_choice(d["value"], ("nan", "inf", "-inf")))
    if kind == "tuple":
        return tuple(_decode(d["items"], depth + 1, budget))
    if kind == "dict":
        return {str(k): _decode(v, depth + 1, budget) for k, v in _list(d["items"])}
    if kind in ("tensor", "ndarray"):
        return _array(d, kind, budget)
    if kind == "numpy":
        value = _decode(d["value"], depth + 1, budget)
        return np.array(value, dtype=_choice(d["dtype"], tuple(DTYPES)))[()]
    if kind == "opaque":
        return Opaque(str(d["type"])[:200], str(d["repr"])[: MAX_TEXT + 40])
    raise DecodeError(f"unknown kind {kind[:40]!r}")


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DecodeError(f"{str(value)[:40]!r} is not one of {allowed}")
    return value


def _list(value: Any) -> list:
    if type(value) is not list:
        raise DecodeError("expected a list")
    return value


def _array(d: dict, kind: str, budget: list[int]):
    name = _choice(d["dtype"], tuple(DTYPES))
    shape, data = _list(d["shape"]), _list(d["data"])
    if not all(type(s) is int and 0 <= s for s in shape) or len(shape) > 16:
        raise DecodeError(f"bad shape {shape[:16]}")
    if math.prod(shape) != len(data):
        raise DecodeError(f"shape {shape} does not hold {len(data)} values")
    _spend(budget, len(data))
    if not all(type(v) in (int, float, bool) or v in ("nan", "inf", "-inf") for v in data):
        raise DecodeError("an array holds something other than numbers")
    values = [float(v) if type(v) is str else v for v in data]
    if kind == "ndarray":
        return np.array(values, dtype=name).reshape(shape)
    dtype = DTYPES[name]
    return (
        torch.tensor(values, dtype=torch.float32 if name == "bfloat16" else dtype)
        .to(dtype)
        .reshape(shape)
    )


def to_json(data: Any) -> bytes:
    return json.dumps(data, allow_nan=False, separators=(",", ":")).encode()


def from_json(raw: bytes) -> Any:
    """Standard JSON only (no NaN literals, no objects with hooks), or ``DecodeError``."""

    def refuse(name):
        raise DecodeError(f"non-standard JSON constant {name}")

    try:
        return json.loads(raw, parse_constant=refuse)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, bad UTF-8, int too long
        raise DecodeError(f"not JSON ({type(err).__name__}: {str(err)[:200]})") from None


# ------------------------------------------------------------------------------- frames
_HEADER = struct.Struct(">QB")


def write_frame(stream, payload: bytes | Any, blob: bool = False) -> None:
    """One record: JSON data (``payload`` any JSON-able value) or raw bytes (``blob=True``)."""
    body = payload if blob else to_json(payload)
    stream.write(_HEADER.pack(len(body), ord("B" if blob else "J")) + body)
    stream.flush()


class FrameReader:
    """Splits bytes fed from a pipe into frames; refuses to hold more than ``limit`` bytes."""

    def __init__(self, limit: int):
        self.limit, self.seen, self.buffer = limit, 0, bytearray()
        self.frames: list[tuple[str, Any]] = []
        """("json", decoded JSON) or ("blob", bytes), in arrival order."""
        self.error: str | None = None
        """Why the channel broke (over its limit, malformed frame); later bytes are dropped."""

    def feed(self, chunk: bytes) -> None:
        if self.error:
            return
        self.seen += len(chunk)
        if self.seen > self.limit:
            self.error = f"the result channel went over its {self.limit // 2**20} MB limit"
            self.buffer.clear()
            return
        self.buffer += chunk
        while len(self.buffer) >= _HEADER.size:
            size, kind = _HEADER.unpack_from(self.buffer)
            if kind not in (ord("J"), ord("B")) or size > self.limit:
                self.error = "a malformed frame on the result channel"
                self.buffer.clear()
                return
            if len(self.buffer) < _HEADER.size + size:
                return
            body = bytes(self.buffer[_HEADER.size : _HEADER.size + size])
            del self.buffer[: _HEADER.size + size]
            if kind == ord("B"):
                self.frames.append(("blob", body))
                continue
            try:
                self.frames.append(("json", from_json(body)))
            except DecodeError as err:
                self.error = f"a malformed frame on the result channel ({err})"
                self.buffer.clear()
                return
