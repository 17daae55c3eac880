"""The pure-Python curve arithmetic agrees with OpenSSL and rejects bad points."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from idstation.agent.emrtd import ec
from idstation.agent.errors import ParseError

CURVES = list(ec.STANDARD_PARAMETERS.values())


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(CURVES), st.integers(min_value=1))
def test_scalar_multiplication_matches_openssl(curve: ec.Curve, k: int) -> None:
    k = k % (curve.n - 1) + 1
    assert curve.multiply(k, curve.g) == curve.multiply_base(k)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_group_order_and_addition(curve: ec.Curve) -> None:
    assert curve.contains(curve.g)
    assert curve.multiply(curve.n, curve.g) is None
    two_g = curve.multiply(2, curve.g)
    assert curve.add(curve.g, curve.g) == two_g
    assert curve.add(curve.g, curve.multiply(curve.n - 1, curve.g)) is None


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_ecdh_x_coordinate_matches_pure_arithmetic(curve: ec.Curve) -> None:
    peer = curve.multiply(123456789, curve.g)
    assert peer is not None
    shared = curve.multiply(987654321, peer)
    assert shared is not None
    assert curve.shared_x(987654321, peer) == shared[0].to_bytes(curve.size, "big")


def test_points_off_the_curve_or_compressed_are_rejected() -> None:
    curve = ec.BRAINPOOL_P256R1
    good = curve.encode_point(curve.g)
    with pytest.raises(ParseError):
        curve.decode_point(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ParseError):
        curve.decode_point(b"\x02" + good[1:33])
    with pytest.raises(ParseError):
        curve.decode_point(b"\x00")
