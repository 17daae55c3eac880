"""Virtual citizens: realistic, reproducible profiles and the chip images made from them.

``make_profile(seed)`` draws a citizen (Vietnamese names with diacritics, provinces and communes,
mostly Kinh and "Không" religion, ages 14-90, old 9-digit ID or none, spouse or none, some
lifelong cards) whose ID number follows the CCCD scheme: province code (3 digits), gender/century
digit (0/1 male/female born 1900s, 2/3 born 2000s), the last 2 digits of the birth year, 6 digits.
``build_chip_image(profile)`` encodes every file, signs EF.SOD with the test PKI
(``profile_data/pki.py``) and returns the ``ChipImage`` the virtual chip serves.
``write_profile``/``load_profile`` keep a profile as a directory a human can read.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from idstation.agent.emrtd.keys import LIFELONG_FILLERS, card_expiry
from idstation.agent.emrtd.virtual_card.image import ChipImage, Faults
from idstation.agent.sim.profile_data.faces import face_jpeg
from idstation.agent.sim.profile_data.pki import TestPki, default_pki, derive_key, test_csca_pem

__all__ = [
    "CitizenProfile",
    "TestPki",
    "build_chip_image",
    "builtin_profiles",
    "image_for",
    "load_profile",
    "make_profile",
    "qr_text",
    "test_csca_pem",
    "test_trust",
    "write_profile",
]

LIFELONG_TEXT = "Không thời hạn"
NATIONALITY = "Việt Nam"
TODAY = date(2025, 11, 1)  # the reference date for ages (profiles stay reproducible)


@dataclass(frozen=True, slots=True)
class CitizenProfile:
    """One virtual citizen and the card they hold. ``repr`` shows only the profile name."""

    name: str
    id_number: str
    full_name: str
    date_of_birth: date
    gender: str  # "Nam" / "Nữ"
    ethnicity: str
    religion: str
    hometown: str
    permanent_address: str
    identifying_marks: str
    issue_date: date
    expiry_date: date | None  # None: lifelong
    father_name: str
    mother_name: str
    spouse_name: str | None
    old_id_number: str | None
    card_kind: str  # "cccd" (2014 law) or "cancuoc" (from 2024-07-01)
    mrz_expiry: str  # YYMMDD (or filler) the chip's MRZ key uses
    nationality: str = NATIONALITY
    field16: str | None = None
    face: bytes = field(default=b"", compare=False)
    faults: Faults = field(default_factory=Faults)
    seed: int = 0

    def __repr__(self) -> str:
        return f"CitizenProfile(name={self.name!r}, card_kind={self.card_kind!r})"

    def dg13_fields(self) -> list[tuple[int, str | tuple[str, ...]]]:
        """DG13 entries in card order (field 14/15/16 only when present)."""
        entries: list[tuple[int, str | tuple[str, ...]]] = [
            (1, self.id_number), (2, self.full_name), (3, self.date_of_birth.strftime("%d/%m/%Y")),
            (4, self.gender), (5, self.nationality), (6, self.ethnicity), (7, self.religion), (8, self.hometown),
            (9, self.permanent_address), (10, self.identifying_marks), (11, self.issue_date.strftime("%d/%m/%Y")),
            (12, self.expiry_date.strftime("%d/%m/%Y") if self.expiry_date else LIFELONG_TEXT),
            (13, (self.father_name, self.mother_name)),
        ]  # fmt: skip
        if self.spouse_name:
            entries.append((14, self.spouse_name))
        entries.append((15, self.old_id_number or ""))
        if self.field16 is not None:
            entries.append((16, self.field16))
        return entries


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "profile_data" / "vn.json").read_text("utf-8"))
    return data


def _weighted(rng: random.Random, pairs: list[list[Any]]) -> str:
    return str(rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0])


def _person(rng: random.Random, gender: str, surname: str | None = None) -> str:
    data = _data()
    surname = surname or _weighted(rng, data["surnames"])
    return f"{surname} {rng.choice(data['middle'][gender])} {rng.choice(data['given'][gender])}"


def _place(rng: random.Random, *, street: bool) -> tuple[str, str]:
    """(province code, address text)."""
    data = _data()
    province = rng.choice(data["provinces"])
    unit = rng.choice(province["units"])
    prefix = "Thành phố " if province["city"] else "Tỉnh "
    text = f"{unit}, {prefix}{province['name']}"
    if street:
        text = f"Số {rng.randint(1, 199)} {rng.choice(data['streets'])}, {text}"
    return province["code"], text


def _id_number(rng: random.Random, province: str, gender: str, dob: date) -> str:
    century = 0 if dob.year < 2000 else 2
    digit = century + (0 if gender == "Nam" else 1)
    return f"{province}{digit}{dob.year % 100:02d}{rng.randrange(10**6):06d}"


def _dates(rng: random.Random) -> tuple[date, date, str]:
    """(date of birth, issue date, card kind) with ages 14-90 today."""
    age_days = rng.randint(14 * 365 + 4, 90 * 365)
    dob = date.fromordinal(TODAY.toordinal() - age_days)
    kind = "cancuoc" if rng.random() < 0.35 else "cccd"
    lo, hi = (date(2024, 7, 1), date(2025, 10, 31)) if kind == "cancuoc" else (date(2021, 1, 1), date(2024, 6, 30))
    lo = max(lo, date(dob.year + 14, dob.month, min(dob.day, 28)) if kind == "cccd" else dob)
    if lo > hi:
        kind, lo, hi = "cancuoc", date(2024, 7, 1), date(2025, 10, 31)
    issued = date.fromordinal(rng.randint(lo.toordinal(), hi.toordinal()))
    return dob, issued, kind


def make_profile(seed: int, *, name: str | None = None) -> CitizenProfile:
    """A random but realistic citizen; the same ``seed`` always gives the same profile."""
    rng = random.Random(seed)
    data = _data()
    gender = rng.choice(("Nam", "Nữ"))
    dob, issued, kind = _dates(rng)
    province, hometown = _place(rng, street=False)
    _, address = _place(rng, street=True) if rng.random() < 0.4 else (province, _place(rng, street=True)[1])
    surname = _weighted(rng, data["surnames"])
    full_name = _person(rng, gender, surname)
    expiry = card_expiry(dob, issued)
    mrz_expiry = expiry.strftime("%y%m%d") if expiry else rng.choice(LIFELONG_FILLERS)
    married = (TODAY.year - dob.year) >= 22 and rng.random() < 0.7
    spouse = _person(rng, "Nữ" if gender == "Nam" else "Nam") if married else None
    old_id = f"{rng.randrange(10**9):09d}" if dob.year < 2004 and rng.random() < 0.6 else None
    return CitizenProfile(
        name=name or f"seed-{seed}", id_number=_id_number(rng, province, gender, dob), full_name=full_name,
        date_of_birth=dob, gender=gender, ethnicity=_weighted(rng, data["ethnicities"]),
        religion=_weighted(rng, data["religions"]), hometown=hometown, permanent_address=address,
        identifying_marks=rng.choice(data["marks"]), issue_date=issued, expiry_date=expiry,
        father_name=_person(rng, "Nam", surname), mother_name=_person(rng, "Nữ"), spouse_name=spouse,
        old_id_number=old_id, card_kind=kind, mrz_expiry=mrz_expiry, face=face_jpeg(seed, gender), seed=seed,
    )  # fmt: skip


def _named(name: str, seed: int, **changes: Any) -> CitizenProfile:
    profile = replace(make_profile(seed, name=name), **changes)
    if "full_name" in changes:  # the father shares the family name
        father = profile.full_name.split(" ", 1)[0] + " " + profile.father_name.split(" ", 1)[1]
        profile = replace(profile, father_name=father)
    expiry = card_expiry(profile.date_of_birth, profile.issue_date)
    kind = "cancuoc" if profile.issue_date >= date(2024, 7, 1) else "cccd"
    mrz_expiry = changes.get("mrz_expiry") or (expiry.strftime("%y%m%d") if expiry else LIFELONG_FILLERS[0])
    return replace(profile, expiry_date=expiry, card_kind=kind, mrz_expiry=mrz_expiry)


@lru_cache(maxsize=1)
def builtin_profiles() -> dict[str, CitizenProfile]:
    """Named profiles for tests and the demo (stable across runs)."""
    profiles = [
        _named("an", 101, full_name="Nguyễn Văn An", gender="Nam", date_of_birth=date(1990, 3, 15),
               id_number="001090123456", issue_date=date(2021, 4, 15), old_id_number="012345678",
               spouse_name="Trần Thị Bích",
               permanent_address="Số 12 Hàng Bạc, Phường Hàng Bạc, Quận Hoàn Kiếm, Thành phố Hà Nội"),
        _named("binh", 102, full_name="Lê Thị Bình", gender="Nữ", date_of_birth=date(1995, 11, 2),
               id_number="079195004321", issue_date=date(2024, 9, 10), old_id_number=None, spouse_name=None),
        _named("lifelong", 103, full_name="Phạm Văn Lộc", gender="Nam", date_of_birth=date(1950, 6, 20),
               id_number="036050111222", issue_date=date(2021, 7, 1), spouse_name="Đỗ Thị Hoa"),
        _named("bac-only", 104, full_name="Hoàng Minh Đức", gender="Nam", date_of_birth=date(1985, 1, 31),
               id_number="038085765432", issue_date=date(2023, 3, 1), faults=Faults(bac_only=True)),
        _named("no-spouse-no-old-id", 105, full_name="Vũ Ngọc Trâm", gender="Nữ", date_of_birth=date(2006, 8, 8),
               id_number="027306000888", issue_date=date(2024, 12, 1), spouse_name=None, old_id_number=None),
        _named("pace-mrz-refused", 106, full_name="Đặng Quốc Huy", gender="Nam", date_of_birth=date(1978, 2, 28),
               id_number="048078246810", issue_date=date(2023, 5, 5), faults=Faults(pace_mrz_refused=True)),
        _named("field16", 107, full_name="Bùi Thị Ngọc Ánh", gender="Nữ", date_of_birth=date(2000, 2, 29),
               id_number="092300135790", issue_date=date(2023, 3, 3), field16="1"),
    ]  # fmt: skip
    return {p.name: p for p in profiles}


def qr_text(profile: CitizenProfile) -> str:
    """The card's QR payload: ID12|oldID9|name|DOB ddmmyyyy|gender|address|issue ddmmyyyy."""
    return "|".join(
        (
            profile.id_number, profile.old_id_number or "", profile.full_name,
            profile.date_of_birth.strftime("%d%m%Y"), profile.gender, profile.permanent_address,
            profile.issue_date.strftime("%d%m%Y"),
        )
    )  # fmt: skip


def _tamper(data: bytes) -> bytes:
    """Change one ASCII letter or digit near the end, so the file still parses but its hash differs."""
    raw = bytearray(data)
    for i in range(len(raw) - 1, -1, -1):
        ch = raw[i]
        if 0x30 <= ch <= 0x39:
            raw[i] = 0x30 + (ch - 0x30 + 1) % 10
            return bytes(raw)
        if 0x41 <= ch <= 0x5A or 0x61 <= ch <= 0x7A:
            raw[i] = ch ^ 0x01 if ch not in (0x5A, 0x7A) else ch - 1
            return bytes(raw)
    raw[-1] ^= 0x01
    return bytes(raw)


def _chip_keys(profile: CitizenProfile) -> tuple[Any, Any]:
    """(AA key P-256, CA key brainpoolP256r1), derived from the ID number: stable per citizen."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return derive_key(f"aa:{profile.id_number}"), derive_key(f"ca:{profile.id_number}", ec.BrainpoolP256R1())


def chip_files(profile: CitizenProfile, pki: TestPki, aa_key: Any, ca_key: Any) -> dict[int, bytes]:
    """DG number → file bytes (DG1, DG2, DG13, DG14, DG15) for ``profile``."""
    from idstation.agent.emrtd.lds import build
    from idstation.agent.emrtd.mrz import encode_td1, mrz_name

    mrz = encode_td1(
        document_number=profile.id_number[-9:], date_of_birth=profile.date_of_birth.strftime("%y%m%d"),
        sex="M" if profile.gender == "Nam" else "F", date_of_expiry=profile.mrz_expiry,
        name=mrz_name(profile.full_name), id_number=profile.id_number,
    )  # fmt: skip
    return {
        1: build.encode_dg1(mrz),
        2: build.encode_dg2(profile.face, 96, 120),
        13: build.encode_dg13(profile.dg13_fields()),
        14: build.encode_dg14(ca_key.public_key()),
        15: build.encode_dg15(aa_key.public_key()),
    }


def build_chip_image(
    profile: CitizenProfile,
    pki: TestPki | None = None,
    faults: Faults | None = None,
    *,
    tamper_dg: int | None = None,
    expired_signer: bool = False,
) -> ChipImage:
    """The ``ChipImage`` of ``profile``: all files, EF.SOD over them by the DSC of ``pki``.

    ``tamper_dg`` changes that data group AFTER signing (passive authentication must fail);
    ``expired_signer`` signs with a DSC whose validity has ended. ``faults`` (default: the
    profile's own) switch the chip's misbehaviours.
    """
    from idstation.agent.emrtd.lds import build
    from idstation.agent.emrtd.virtual_card.image import FID_CARD_ACCESS, FID_COM, FID_DG, FID_SOD

    if pki is None or (expired_signer and not pki.expired):
        pki = default_pki(pki.seed if pki else 0, expired=expired_signer)
    chosen = faults if faults is not None and faults != Faults() else profile.faults
    aa_key, ca_key = _chip_keys(profile)
    groups = chip_files(profile, pki, aa_key, ca_key)
    sod = build.encode_sod(groups, pki.dsc_certificate, pki.dsc_key)
    if tamper_dg is not None:
        if tamper_dg not in groups:
            raise TypeError(f"profile has no DG{tamper_dg} to tamper with")
        groups[tamper_dg] = _tamper(groups[tamper_dg])
    files = {FID_COM: build.encode_com(sorted(groups)), FID_SOD: sod}
    files.update({FID_DG[n]: data for n, data in groups.items()})
    if not chosen.bac_only:
        files[FID_CARD_ACCESS] = build.encode_card_access()
    return ChipImage(
        files=files, can=profile.id_number[-6:], doc_number=profile.id_number[-9:],
        date_of_birth=profile.date_of_birth.strftime("%y%m%d"), date_of_expiry=profile.mrz_expiry,
        aa_key=aa_key, ca_key=ca_key, faults=chosen,
    )  # fmt: skip


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


def profile_json(profile: CitizenProfile) -> dict[str, Any]:
    data = {k: v for k, v in asdict(profile).items() if k not in ("face", "faults")}
    for key in ("date_of_birth", "issue_date", "expiry_date"):
        data[key] = data[key].isoformat() if data[key] else None
    data["faults"] = {k: v for k, v in asdict(profile.faults).items() if v}
    return data


def write_profile(profile: CitizenProfile, directory: str | Path, pki: TestPki | None = None) -> Path:
    """Write ``profile`` as a readable directory (profile.json, qr.txt, face.jpg, csca/, keys/)."""
    from cryptography.hazmat.primitives import serialization

    pki = pki or default_pki()
    root = Path(directory)
    (root / "csca").mkdir(parents=True, exist_ok=True)
    (root / "keys").mkdir(exist_ok=True)
    data = profile_json(profile) | {"pki_seed": pki.seed, "expired_signer": pki.expired}
    (root / "profile.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")
    (root / "qr.txt").write_text(qr_text(profile) + "\n", "utf-8")
    (root / "face.jpg").write_bytes(profile.face)
    (root / "csca" / "csca.pem").write_bytes(pki.csca_pem())
    (root / "keys" / "dsc.pem").write_bytes(pki.dsc_certificate.public_bytes(serialization.Encoding.PEM))
    aa_key, ca_key = _chip_keys(profile)
    for name, key in (("dsc_key", pki.dsc_key), ("csca_key", pki.csca_key), ("aa_key", aa_key), ("ca_key", ca_key)):
        path = root / "keys" / f"{name}.pem"
        path.write_bytes(_pem_key(key))
        path.chmod(0o600)
    return root


def load_profile(directory: str | Path) -> tuple[CitizenProfile, TestPki]:
    """Read a directory written by ``write_profile``; ``ConfigError`` when it is not one."""
    from idstation.agent.errors import ConfigError

    root = Path(directory)
    try:
        data = json.loads((root / "profile.json").read_text("utf-8"))
        face = (root / "face.jpg").read_bytes()
        pki = default_pki(int(data.pop("pki_seed", 0)), expired=bool(data.pop("expired_signer", False)))
        faults = Faults(**data.pop("faults", {}))
        for key in ("date_of_birth", "issue_date", "expiry_date"):
            data[key] = date.fromisoformat(data[key]) if data[key] else None
        profile = CitizenProfile(**data, face=face, faults=faults)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"not a citizen profile directory ({type(exc).__name__})") from exc
    return profile, pki


def image_for(profile: str | Path, faults: Faults | None = None, **options: Any) -> Any:
    """A chip image for a built-in profile name, a profile directory, or ``seed:N``."""
    from idstation.agent.errors import ConfigError

    text = str(profile)
    if text in builtin_profiles():
        return build_chip_image(builtin_profiles()[text], None, faults, **options)
    if text.startswith("seed:") and text[5:].isdigit():
        return build_chip_image(make_profile(int(text[5:])), None, faults, **options)
    if Path(text).is_dir():
        loaded, pki = load_profile(text)
        return build_chip_image(loaded, pki, faults, **options)
    raise ConfigError("unknown profile: give a built-in name, seed:N or a profile directory")


def test_trust(csca_dir: str | Path | None = None) -> Any:
    """A trust store with ``csca_dir`` plus the test CSCA that signs the simulated cards."""
    from idstation.agent.emrtd.read import load_trust

    return load_trust(csca_dir, extra_pem=test_csca_pem())


test_trust.__test__ = False  # type: ignore[attr-defined]
