"""Elliptic-curve arithmetic over prime fields for PACE generic mapping and Chip Authentication.

``cryptography`` exposes ECDH and ECDSA but not point addition or multiplication by an arbitrary
base point, which PACE's generic mapping needs (ICAO 9303-11 §4.4.3.3.1: G~ = s·G + H). This is a
small, correct (not constant-time) implementation in Jacobian coordinates with plain integers,
plus the standardized domain parameters PACE refers to by parameter ID (ICAO 9303-11 §9.5.1).
Points are affine ``(x, y)`` tuples; the point at infinity is ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from idstation.agent.errors import ParseError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurve

Point = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Curve:
    """Short Weierstrass curve y² = x³ + ax + b over GF(p) with base point G of order n."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int = 1

    @property
    def g(self) -> Point:
        return (self.gx, self.gy)

    @property
    def size(self) -> int:
        """Field element size in bytes."""
        return (self.p.bit_length() + 7) // 8

    def contains(self, point: Point) -> bool:
        x, y = point
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0

    # -- Jacobian arithmetic ---------------------------------------------------------------------
    def _double(self, pt: tuple[int, int, int]) -> tuple[int, int, int]:
        x, y, z = pt
        p = self.p
        if y == 0 or z == 0:
            return (1, 1, 0)
        yy = y * y % p
        s = 4 * x * yy % p
        z2 = z * z % p
        m = (3 * x * x + self.a * z2 * z2) % p
        x3 = (m * m - 2 * s) % p
        y3 = (m * (s - x3) - 8 * yy * yy) % p
        return (x3, y3, 2 * y * z % p)

    def _add(self, p1: tuple[int, int, int], p2: tuple[int, int, int]) -> tuple[int, int, int]:
        if p1[2] == 0:
            return p2
        if p2[2] == 0:
            return p1
        p = self.p
        x1, y1, z1 = p1
        x2, y2, z2 = p2
        z1s, z2s = z1 * z1 % p, z2 * z2 % p
        u1, u2 = x1 * z2s % p, x2 * z1s % p
        s1, s2 = y1 * z2s * z2 % p, y2 * z1s * z1 % p
        if u1 == u2:
            return self._double(p1) if s1 == s2 else (1, 1, 0)
        hh = (u2 - u1) % p
        r = (s2 - s1) % p
        h2 = hh * hh % p
        h3 = h2 * hh % p
        u1h2 = u1 * h2 % p
        x3 = (r * r - h3 - 2 * u1h2) % p
        y3 = (r * (u1h2 - x3) - s1 * h3) % p
        return (x3, y3, hh * z1 * z2 % p)

    def _affine(self, pt: tuple[int, int, int]) -> Point | None:
        x, y, z = pt
        if z == 0:
            return None
        zi = pow(z, -1, self.p)
        zi2 = zi * zi % self.p
        return (x * zi2 % self.p, y * zi2 * zi % self.p)

    def multiply(self, k: int, point: Point) -> Point | None:
        """k·P (None for the point at infinity)."""
        k %= self.n
        if k == 0:
            return None
        table = [(1, 1, 0), (point[0], point[1], 1)]  # fixed 4-bit window: 0·P … 15·P
        for _ in range(14):
            table.append(self._add(table[-1], table[1]))
        acc = (1, 1, 0)
        for shift in range(((k.bit_length() + 3) // 4 - 1) * 4, -1, -4):
            for _ in range(4):
                acc = self._double(acc)
            digit = (k >> shift) & 0xF
            if digit:
                acc = self._add(acc, table[digit])
        return self._affine(acc)

    def multiply_base(self, k: int) -> Point:
        """k·G for 0 < k < n, through ``cryptography`` (OpenSSL) when the curve is a named one."""
        named = _named(self.name)
        if named is None or not 0 < k < self.n:
            point = self.multiply(k, self.g)
            if point is None:
                raise ParseError("scalar is a multiple of the group order")
            return point
        from cryptography.hazmat.primitives.asymmetric import ec as cec

        numbers = cec.derive_private_key(k, named).public_key().public_numbers()
        return (numbers.x, numbers.y)

    def shared_x(self, k: int, point: Point) -> bytes:
        """x(k·P) as a field-size octet string (ECDH, BSI TR-03111 §4.3.1); OpenSSL when possible."""
        named = _named(self.name)
        if named is not None and 0 < k < self.n:
            from cryptography.hazmat.primitives.asymmetric import ec as cec

            try:
                peer = cec.EllipticCurvePublicKey.from_encoded_point(named, self.encode_point(point))
                return cec.derive_private_key(k, named).exchange(cec.ECDH(), peer)
            except ValueError:
                raise ParseError(f"EC point is not a valid {self.name} public key") from None
        shared = self.multiply(k, point)
        if shared is None:
            raise ParseError("key agreement gave the point at infinity")
        return shared[0].to_bytes(self.size, "big")

    def add(self, p1: Point | None, p2: Point | None) -> Point | None:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        return self._affine(self._add((p1[0], p1[1], 1), (p2[0], p2[1], 1)))

    # -- encoding --------------------------------------------------------------------------------
    def encode_point(self, point: Point) -> bytes:
        """Uncompressed encoding 04 ‖ x ‖ y (BSI TR-03111 §3.2.1)."""
        return b"\x04" + point[0].to_bytes(self.size, "big") + point[1].to_bytes(self.size, "big")

    def decode_point(self, data: bytes) -> Point:
        """Decode an uncompressed point and check it lies on the curve (never infinity)."""
        if len(data) != 1 + 2 * self.size or data[0] != 0x04:
            raise ParseError(f"EC point is not an uncompressed {self.name} point")
        point = (int.from_bytes(data[1 : 1 + self.size], "big"), int.from_bytes(data[1 + self.size :], "big"))
        if not self.contains(point):
            raise ParseError(f"EC point is not on {self.name}")
        return point


def _curve(name: str, *hex_values: str) -> Curve:
    """Curve from hex p, a, b, Gx, Gy, n."""
    p, a, b, gx, gy, n = (int(v, 16) for v in hex_values)
    return Curve(name, p, a, b, gx, gy, n)


P256 = _curve(
    "secp256r1",
    "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc",
    "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
    "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
)
BRAINPOOL_P256R1 = _curve(
    "brainpoolp256r1",
    "a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377",
    "7d5a0975fc2c3057eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9",
    "26dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b6",
    "8bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262",
    "547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997",
    "a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7",
)
P384 = _curve(
    "secp384r1",
    "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc",
    "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
)
BRAINPOOL_P384R1 = _curve(
    "brainpoolp384r1",
    "8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b412b1da197fb71123acd3a729901d1a71874700133107ec53",
    "7bc382c63d8c150c3c72080ace05afa0c2bea28e4fb22787139165efba91f90f8aa5814a503ad4eb04a8c7dd22ce2826",
    "04a8c7dd22ce28268b39b55416f0447c2fb77de107dcd2a62e880ea53eeb62d57cb4390295dbc9943ab78696fa504c11",
    "1d1c64f068cf45ffa2a63a81b7c13f6b8847a3e77ef14fe3db7fcafe0cbd10e8e826e03436d646aaef87b2e247d4af1e",
    "8abe1d7520f9c2a45cb1eb8e95cfd55262b70b29feec5864e19c054ff99129280e4646217791811142820341263c5315",
    "8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b31f166e6cac0425a7cf3ab6af6b7fc3103b883202e9046565",
)

# ICAO 9303-11 §9.5.1 standardized domain parameter IDs (the EC ones implemented here).
STANDARD_PARAMETERS: dict[int, Curve] = {12: P256, 13: BRAINPOOL_P256R1, 15: P384, 16: BRAINPOOL_P384R1}
BY_NAME: dict[str, Curve] = {c.name: c for c in STANDARD_PARAMETERS.values()}


def curve_for(parameter_id: int) -> Curve:
    try:
        return STANDARD_PARAMETERS[parameter_id]
    except KeyError:
        raise ParseError(f"standardized domain parameters {parameter_id} are not supported") from None


def find_curve(p: int, a: int, b: int, g: Point, n: int, *, h: int = 1) -> Curve:
    """The named curve that explicit domain parameters describe (ICAO 9303-11 §9.5.1, §6.2).

    ICAO 9303 allows only its standardized curves, given by name or by explicit parameters equal
    to them; anything else (another prime, a forged order, a cofactor) is a ``ParseError``, decided
    by comparing integers before any arithmetic on the chip's parameters is done.
    """
    for curve in STANDARD_PARAMETERS.values():
        if curve.p != p:
            continue
        if (curve.a, curve.b, curve.g, curve.n, curve.h) == (a % p, b % p, g, n, h):
            return curve
        raise ParseError(f"explicit EC parameters over {curve.name}'s field differ from {curve.name}")
    raise ParseError("explicit EC parameters name no curve ICAO 9303 allows")


def _named(name: str) -> EllipticCurve | None:
    """The ``cryptography`` curve object for a named curve, or None (explicit parameters)."""
    from cryptography.hazmat.primitives.asymmetric import ec as cec

    return {
        "secp256r1": cec.SECP256R1(),
        "secp384r1": cec.SECP384R1(),
        "brainpoolp256r1": cec.BrainpoolP256R1(),
        "brainpoolp384r1": cec.BrainpoolP384R1(),
    }.get(name)
