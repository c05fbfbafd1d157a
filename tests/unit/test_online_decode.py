"""The online reader's value decoder agrees with protobuf on every scalar it handles."""

from __future__ import annotations

import math

import pytest
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from shipyard.features.online import decode_value

INTS = [0, 1, 127, 128, 300, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, -1, -128, -(2**63)]
DOUBLES = [0.0, -0.0, 1.5, -2.25, 1e-300, 1.7976931348623157e308, 28.450526315789478]


@pytest.mark.parametrize("value", INTS)
def test_int64(value: int) -> None:
    assert decode_value(ValueProto(int64_val=value).SerializeToString()) == value


@pytest.mark.parametrize("value", [0, 1, -1, 2**31 - 1, -(2**31)])
def test_int32(value: int) -> None:
    assert decode_value(ValueProto(int32_val=value).SerializeToString()) == value


@pytest.mark.parametrize("value", DOUBLES)
def test_double(value: float) -> None:
    decoded = decode_value(ValueProto(double_val=value).SerializeToString())
    assert decoded == value and math.copysign(1, decoded) == math.copysign(1, value)


def test_other_types_fall_back_to_protobuf() -> None:
    assert decode_value(ValueProto(string_val="x").SerializeToString()) == "x"
    assert decode_value(ValueProto(bool_val=True).SerializeToString()) is True
    assert decode_value(b"") is None


def test_scalars_never_need_protobuf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path must cover what the catalog stores (ints and doubles), not fall back."""
    encoded = [
        ValueProto(double_val=2.5).SerializeToString(),
        ValueProto(int64_val=-7).SerializeToString(),
        ValueProto(float_val=0.5).SerializeToString(),
    ]

    def no_protobuf(_: bytes) -> None:
        raise AssertionError("fell back to protobuf")

    monkeypatch.setattr(ValueProto, "FromString", no_protobuf)
    assert [decode_value(raw) for raw in encoded] == [2.5, -7, 0.5]
