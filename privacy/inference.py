"""Draft a dataset contract from a file, for a human to review.

``infer_contract(lf, dataset)`` looks at the column names and at a sample (the first
``sample_rows`` rows) and returns contract YAML with ``# REVIEW`` comments. It proposes a
role and a type per column:

* direct **identifiers** by name (person names, email, phone, address, national ids, bank
  and card numbers, ids; in English, Spanish, French, German, Italian, Dutch, Portuguese,
  Polish and Swedish), by content (email, phone, IBAN and card numbers with their checksums,
  IPv4/IPv6, URLs, US SSN, UK NINO, Spanish DNI, common first names) and by
  near-uniqueness;
* **quasi-identifiers** by name (age, gender, birth date, postcode, marital status, race,
  education, region, department, job title, ...), with a generalization where one is
  standard (age bands, birth year, postcode prefix);
* **time** columns (dates, or integers named like a day/year), **measures** (numbers) and
  **dimensions** (low-cardinality categories); high-cardinality text is dropped.

Nothing read from a row is written into the draft: no values, no dimension keys (keys are
private until a human declares them), no number derived from the data (measures get
``bounds: auto``, estimated under DP at each release), and comments say "few" or "many"
distinct values, never a count. The draft is a valid contract as emitted
(``parse_contract`` accepts it).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from dataclasses import dataclass, field

import polars as pl

from privacy.contract import NAME_RE
from privacy.errors import ContractError

# ----------------------------------------------------------------------------- lexicons

_PERSON_NAME_WORDS = {
    "name", "names", "firstname", "lastname", "surname", "fullname", "givenname",
    "familyname", "middlename", "maidenname", "forename", "nombre", "nombres", "apellido",
    "apellidos", "nom", "prenom", "prénom", "vorname", "nachname", "familienname",
    "nome", "cognome", "naam", "voornaam", "achternaam", "imie", "imię", "nazwisko",
    "sobrenome", "fornavn", "efternamn", "fornamn", "förnamn", "navn",
}  # fmt: skip
#: tokens that may qualify "name" and still mean a person's name
_PERSON_QUALIFIERS = {
    "first", "last", "full", "given", "family", "middle", "maiden", "fake", "user", "person",
    "patient", "employee", "customer", "client", "member", "display", "sur", "fore", "nick",
    "contact", "owner", "student", "staff", "subject", "applicant", "worker", "the", "of",
}  # fmt: skip
_IDENTIFIER_WORDS = {
    "email": "an email address", "mail": "an email address", "correo": "an email address",
    "courriel": "an email address", "epost": "an email address",
    "emailaddress": "an email address",
    "phone": "a phone number", "telephone": "a phone number", "tel": "a phone number",
    "mobile": "a phone number", "cell": "a phone number", "cellphone": "a phone number",
    "telefono": "a phone number", "teléfono": "a phone number", "telefon": "a phone number",
    "téléphone": "a phone number", "handy": "a phone number", "fax": "a phone number",
    "phonenumber": "a phone number", "telefoon": "a phone number", "celular": "a phone number",
    "address": "an address", "street": "an address", "addr": "an address",
    "direccion": "an address", "dirección": "an address", "adresse": "an address",
    "strasse": "an address", "straße": "an address", "indirizzo": "an address",
    "calle": "an address", "rue": "an address", "adres": "an address", "endereco": "an address",
    "ssn": "a national id", "socialsecurity": "a national id", "nino": "a national id",
    "nin": "a national id", "nif": "a national id", "nie": "a national id", "dni": "a national id",
    "bsn": "a national id", "steuerid": "a national id", "codicefiscale": "a national id",
    "nir": "a national id", "insee": "a national id", "personnummer": "a national id",
    "pesel": "a national id", "cpf": "a national id", "aadhaar": "a national id",
    "passport": "a national id", "pasaporte": "a national id", "reisepass": "a national id",
    "taxid": "a national id", "tin": "a national id", "nationalid": "a national id",
    "curp": "a national id", "rfc": "a national id", "driverslicense": "a national id",
    "iban": "a bank account", "bankaccount": "a bank account", "accountnumber": "a bank account",
    "konto": "a bank account", "rekening": "a bank account", "creditcard": "a card number",
    "cardnumber": "a card number", "ccnumber": "a card number", "kreditkarte": "a card number",
    "tarjeta": "a card number", "ip": "an IP address", "ipaddress": "an IP address",
    "url": "a URL", "website": "a URL", "homepage": "a URL", "username": "a user name",
    "login": "a user name", "password": "a secret",
}  # fmt: skip
_ID_WORDS = {
    "id", "ids", "uuid", "guid", "identifier", "key", "number", "no", "nr", "num",
    "nummer", "numero", "número", "code", "mrn", "ident", "identificador",
}  # fmt: skip
_QI_WORDS = {
    "age": "age", "edad": "age", "alter": "age", "âge": "age", "eta": "age", "età": "age",
    "leeftijd": "age", "idade": "age", "wiek": "age", "alder": "age", "ålder": "age",
    "gender": "gender", "sex": "gender", "sexo": "gender", "genre": "gender", "sexe": "gender",
    "geschlecht": "gender", "sesso": "gender", "geslacht": "gender", "genero": "gender",
    "género": "gender", "plec": "gender", "kon": "gender", "kön": "gender",
    "race": "race or ethnicity", "ethnicity": "race or ethnicity", "ethnic": "race or ethnicity",
    "raza": "race or ethnicity", "etnia": "race or ethnicity", "nationality": "nationality",
    "nacionalidad": "nationality", "citizenship": "nationality", "nationalite": "nationality",
    "staatsangehorigkeit": "nationality", "religion": "religion",
    "marital": "marital status", "maritl": "marital status", "maritalstatus": "marital status",
    "married": "marital status", "estadocivil": "marital status",
    "familienstand": "marital status", "etatcivil": "marital status",
    "education": "education", "educ": "education", "degree": "education",
    "schooling": "education", "educacion": "education", "bildung": "education",
    "istruzione": "education", "opleiding": "education",
    "region": "location", "city": "location", "town": "location", "country": "location",
    "county": "location", "province": "location", "ciudad": "location", "stadt": "location",
    "ville": "location", "citta": "location", "municipality": "location",
    "district": "location", "pais": "location", "land": "location",
    "department": "employment", "dept": "employment", "occupation": "employment",
    "jobrole": "employment", "jobtitle": "employment", "profession": "employment",
    "abteilung": "employment", "departamento": "employment", "position": "employment",
}  # fmt: skip
_BIRTH_WORDS = {
    "birth", "birthdate", "birthday", "dob", "dateofbirth", "geburtsdatum", "geburtstag",
    "nacimiento", "fechanacimiento", "naissance", "nascita", "geboortedatum", "nascimento",
}  # fmt: skip
_POSTCODE_WORDS = {
    "zip", "zipcode", "postcode", "postal", "postalcode", "plz", "postleitzahl",
    "codigopostal", "cap", "postcodes", "cp",
}  # fmt: skip
_TIME_WORDS = {
    "date", "day", "year", "month", "week", "quarter", "time", "timestamp", "datetime",
    "period", "fecha", "datum", "jahr", "annee", "année", "anno", "año", "dia", "mes",
    "monat", "mois", "created", "updated", "yr",
}  # fmt: skip
_NOT_TIME = {"last", "per", "times", "since", "in", "num", "number", "count", "years", "days"}
#: a small multi-language list of common first names (lower case) for content detection
_FIRST_NAMES_TEXT = """
    james john robert michael william david richard joseph thomas charles mary patricia
    jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret
    sandra ashley emily donna michelle carol amanda melissa deborah stephanie rebecca
    laura helen anna emma olivia noah liam sophia mia isabella ava lucas leon paul peter
    hans maria jose juan carlos luis javier miguel antonio manuel francisco pedro jorge
    ana carmen lucia sofia marta elena pablo diego sergio marie jean pierre michel
    philippe alain nicolas julien camille lea chloe manon louis hugo giulia giuseppe marco
    luca francesco alessandro andrea matteo sara chiara jan piet kees daan sanne lotte
    joao tiago rafael beatriz mariana piotr krzysztof tomasz agnieszka katarzyna erik lars
    anders johan karin ingrid astrid mohammed ahmed ali fatima omar wei li ming yuki
    hiroshi sakura raj priya amit anil sunita kevin brian george edward ronald timothy
    jason jeffrey ryan jacob gary eric stephen jonathan larry justin scott brandon frank
    benjamin gregory samuel raymond patrick alexander jack dennis jerry tyler aaron henry
    adam douglas nathan zachary kyle walter harold carl arthur gerald roger keith jeremy
    lawrence sean christian ethan austin joe albert jesse willie billy bruce bryan ralph
    roy jordan eugene wayne alan russell gabriel randy philip harry vincent bobby johnny
    logan penny grace julia hannah kate katie rose alice
"""
_FIRST_NAMES = frozenset(_FIRST_NAMES_TEXT.split())

# ----------------------------------------------------------------------------- patterns

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_URL = re.compile(r"^(?:(?:https?|ftp)://|www\.)\S+$", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[\d\s().\-/]{7,24}$")
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$")
_NINO = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")
_DNI = re.compile(r"^(\d{8})-?([A-Z])$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")
_CARD = re.compile(r"^\d{13,19}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(v: str) -> bool:
    d = re.sub(r"[ -]", "", v)
    return bool(_CARD.match(d)) and d[0] in "3456" and _luhn(d)


def _is_iban(v: str) -> bool:
    s = v.replace(" ", "").upper()
    if not _IBAN.match(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _is_ip(v: str) -> bool:
    if not any(c in v for c in ".:") or len(v) > 45:
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _is_phone(v: str) -> bool:
    if not _PHONE.match(v) or _ISO_DATE.match(v):
        return False
    digits = sum(c.isdigit() for c in v)
    formatted = v.startswith(("+", "0", "(")) or any(c in v for c in " -().")
    return 7 <= digits <= 15 and formatted and not re.fullmatch(r"-?\d+(\.\d+)?", v)


def _is_national_id(v: str) -> bool:
    if _SSN.match(v) or _NINO.match(v.replace(" ", "").upper()):
        return True
    m = _DNI.match(v.upper())
    return m is not None and "TRWAGMYFPDXBNJZSQVHLCKE"[int(m.group(1)) % 23] == m.group(2)


def _is_first_name(v: str) -> bool:
    first = v.split()[0].lower() if v.split() else ""
    return first in _FIRST_NAMES and all(p.isalpha() for p in v.replace("-", " ").split())


_CONTENT_CHECKS = (
    ("an email address", _EMAIL.match, 0.8),
    ("a URL", _URL.match, 0.8),
    ("an IP address", _is_ip, 0.8),
    ("an IBAN (checksum valid)", _is_iban, 0.8),
    ("a card number (Luhn valid)", _is_card, 0.8),
    ("a national id (US SSN, UK NINO or Spanish DNI)", _is_national_id, 0.8),
    ("a phone number", _is_phone, 0.8),
    ("a person's first name (name list)", _is_first_name, 0.5),
)

# ----------------------------------------------------------------------------- profiling


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [t for t in re.split(r"[^0-9A-Za-zÀ-ÿąćęłńóśźżĄĆĘŁŃÓŚŹŻ]+", spaced.lower()) if t]


def _phrases(tokens: list[str]) -> set[str]:
    out = set(tokens)
    out |= {a + b for a, b in itertools.pairwise(tokens)}
    out |= {a + b + c for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)}
    out.add("".join(tokens))
    return out


@dataclass
class _Profile:
    name: str
    tokens: list[str]
    n: int = 0  # non-null sampled values
    distinct: int = 0
    kind: str = "string"  # string, integer, float, boolean, date, datetime
    avg_len: float = 0.0
    avg_words: float = 0.0
    content: list[tuple[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.distinct / self.n if self.n else 0.0


def _text_kind(s: pl.Series) -> str:
    if s.len() == 0:
        return "string"
    as_float = s.cast(pl.Float64, strict=False)
    if as_float.null_count() == 0 and as_float.is_finite().all():
        if s.cast(pl.Int64, strict=False).null_count() == 0:
            return "integer"
        return "float"
    low = s.str.to_lowercase()
    if low.is_in(["true", "false"]).all():
        return "boolean"
    if s.str.to_date("%Y-%m-%d", strict=False).null_count() == 0:
        return "date"
    if s.str.contains(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}").all():
        return "datetime"
    return "string"


def _kind_of(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "string"


def _profile(name: str, s: pl.Series) -> _Profile:
    p = _Profile(name=name, tokens=_tokens(name))
    if s.dtype == pl.String:
        s = s.str.strip_chars()
        s = s.filter(s.str.len_bytes() > 0)
        p.kind = _text_kind(s)
    else:
        s = s.drop_nulls()
        p.kind = _kind_of(s.dtype)
    p.n = s.len()
    if p.n == 0:
        return p
    p.distinct = s.n_unique()
    text = s.cast(pl.String)
    p.avg_len = float(text.str.len_chars().mean() or 0.0)  # type: ignore[arg-type]
    p.avg_words = float(text.str.count_matches(r"\S+").mean() or 0.0)  # type: ignore[arg-type]
    if p.kind in ("string", "integer"):
        values = (
            text.unique().head(2000).to_list() if p.kind == "integer" else text.head(2000).to_list()
        )
        for label, check, threshold in _CONTENT_CHECKS:
            if p.kind == "integer" and "card" not in label:
                continue
            share = sum(1 for v in values if v and check(v)) / len(values)
            if share >= threshold:
                p.content.append((label, share))
    return p


# ----------------------------------------------------------------------------- decisions


@dataclass
class _Proposal:
    name: str
    role: str
    type: str
    why: str
    review: str | None = None
    action: str | None = None
    granularity: str | None = None
    generalize: str | None = None


def _most(share: float) -> str:
    return "nearly all" if share >= 0.95 else "most"


def _distinct(p: _Profile) -> str:
    return "almost every sampled value distinct" if p.ratio >= 0.95 else "many distinct values"


def _yaml_type(kind: str) -> str:
    return kind if kind in ("integer", "float", "boolean", "date", "datetime") else "string"


def _name_identifier(p: _Profile) -> str | None:
    phrases = _phrases(p.tokens)
    for word, what in _IDENTIFIER_WORDS.items():
        if word in phrases:
            return what
    if phrases & _PERSON_NAME_WORDS:
        others = [
            t for t in p.tokens if t not in _PERSON_NAME_WORDS and t not in _PERSON_QUALIFIERS
        ]
        if not others:
            return "a person's name"
    return None




def _propose(p: _Profile, rows: int) -> _Proposal:
    t = _yaml_type(p.kind)
    phrases = _phrases(p.tokens)
    named = _name_identifier(p)
    if named:
        return _Proposal(p.name, "identifier", "string", f"column name suggests {named}")
    if p.content:
        label, share = p.content[0]
        return _Proposal(
            p.name, "identifier", "string", f"{_most(share)} sampled values look like {label}"
        )
    if phrases & _BIRTH_WORDS:
        return _Proposal(
            p.name, "quasi_identifier", t if t in ("date", "datetime") else "string",
            "column name suggests a birth date",
            generalize="{kind: date, to: year}" if t in ("date", "datetime") else None,
            review="a birth date is close to identifying: keep only the year, or drop it",
        )  # fmt: skip
    if phrases & _POSTCODE_WORDS:
        return _Proposal(
            p.name, "quasi_identifier", "string", "column name suggests a postcode",
            generalize="{kind: prefix, length: 3}",
        )  # fmt: skip
    id_named = bool(set(p.tokens) & _ID_WORDS) and p.kind in ("string", "integer")
    if id_named and (p.ratio >= 0.2 or p.distinct > 100):
        return _Proposal(
            p.name, "identifier", "string", f"named like an id; {_distinct(p)}"
        )
    qi = next((what for word, what in _QI_WORDS.items() if word in phrases), None)
    if qi:
        gen = "{kind: band, width: 10}" if qi == "age" and t in ("integer", "float") else None
        return _Proposal(
            p.name, "quasi_identifier", t if t != "boolean" else "string",
            f"column name suggests {qi}", generalize=gen,
        )  # fmt: skip
    if p.kind in ("date", "datetime"):
        return _Proposal(p.name, "time", t, "values are dates", granularity="month")
    time_named = bool(set(p.tokens) & _TIME_WORDS) and not set(p.tokens) & _NOT_TIME
    if time_named and p.kind == "integer":
        gran = (
            "year"
            if {"year", "yr", "jahr", "anno", "año", "annee", "année"} & set(p.tokens)
            else "day"
        )
        return _Proposal(
            p.name, "time", "integer", "integer column named like a period", granularity=gran
        )
    if p.kind == "integer" and p.n >= 20 and p.distinct == p.n:
        return _Proposal(
            p.name, "identifier", "string", "every sampled value is distinct (near-unique)",
            review="a unique number is often a record id; if it is a measure, say so",
        )  # fmt: skip
    if p.kind == "integer" and p.distinct <= 12:
        return _Proposal(p.name, "dimension", "integer", "few distinct values")
    if p.kind in ("integer", "float"):
        return _Proposal(
            p.name, "measure", t, "numeric",
            review="bounds: auto estimates the clamping range under DP at each release (10% "
            "of its ε); write bounds: [lower, upper] instead if the range is public",
        )  # fmt: skip
    if p.kind == "boolean":
        return _Proposal(p.name, "dimension", "boolean", "true/false values")
    if p.n >= 20 and p.ratio >= 0.95:
        return _Proposal(
            p.name, "identifier", "string", "near-unique: almost every sampled value is distinct"
        )
    if p.avg_len > 30 and p.avg_words >= 4:
        return _Proposal(
            p.name, "text", "string", "free text", review="free text is dropped by default"
        )
    if p.distinct <= 100 and (p.ratio <= 0.5 or p.n < 20):
        return _Proposal(
            p.name, "dimension", "string", "few distinct values",
            review="keys are private: list them under keys: only if they are public",
        )  # fmt: skip
    return _Proposal(
        p.name, "text", "string", "high-cardinality text (many distinct values)",
        review="dropped by default; make it a dimension or identifier if that is what it is",
    )  # fmt: skip


# ----------------------------------------------------------------------------- YAML

_YAML_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _key(name: str) -> str:
    if _PLAIN.match(name) and name.lower() not in _YAML_SPECIAL:
        return name
    return json.dumps(name, ensure_ascii=False)



#: name tokens of a column that names a person (not a record, a test or an order)
_PERSON_WORDS = {
    "person", "people", "patient", "employee", "emp", "staff", "worker", "customer",
    "client", "member", "user", "subject", "participant", "respondent", "student", "pupil",
    "applicant", "citizen", "resident", "individual", "seqn", "persid", "personid",
    "paciente", "empleado", "cliente", "mitarbeiter", "kunde", "salarie",
    "dipendente", "medewerker", "klant", "participante",
}  # fmt: skip
#: name tokens of ids that are not people
_NOT_PERSON_WORDS = {
    "test", "order", "transaction", "invoice", "visit", "encounter", "sample", "record",
    "row", "event", "session", "request", "ticket", "item", "product", "project", "file",
    "batch", "specimen", "lab", "claim", "case", "line",
}  # fmt: skip


def _person_score(p: _Proposal, prof: _Profile) -> float:
    """How much a column looks like the person every row belongs to (0: not at all).

    Only identifier columns qualify. A name that says person (patient_id, seqn, employee)
    counts most, then an id-like name, then near-uniqueness; ids of records, tests or orders
    are passed over, and so are columns whose values are names, addresses or free text."""
    if p.role != "identifier" or prof.kind not in ("string", "integer") or prof.n == 0:
        return 0.0
    tokens = set(prof.tokens) | {"".join(prof.tokens)}
    if tokens & _NOT_PERSON_WORDS:
        return 0.0
    named = _name_identifier(prof)
    if named is not None and named not in ("an email address", "a user name"):
        return 0.0  # a person's name, phone or address: identifying, but not a key
    score = 0.0
    if tokens & _PERSON_WORDS or any(t.startswith(tuple(_PERSON_WORDS)) for t in tokens):
        score += 4
    if set(prof.tokens) & _ID_WORDS or prof.name.lower().endswith("id"):
        score += 2
    if named is not None:
        score += 1  # an email address or user name identifies one person
    if prof.ratio >= 0.2:
        score += 1
    return score


def _privacy_unit(props: list[_Proposal], profiles: dict[str, _Profile]) -> _Proposal | None:
    """The most person-like column that exists in the file, or None."""
    scored = [(_person_score(p, profiles[p.name]), i, p) for i, p in enumerate(props)]
    best = max((s for s in scored if s[0] > 0), default=None, key=lambda s: (s[0], -s[1]))
    return None if best is None else best[2]


def _render(
    dataset: str,
    props: list[_Proposal],
    repeating: set[str],
    sample: int,
    profiles: dict[str, _Profile],
) -> str:
    unit = _privacy_unit(props, profiles)
    if unit is not None:
        unit.action = "pseudonymize"
    qis = [p.name for p in props if p.role == "quasi_identifier"]
    lines = [
        "# yaml-language-server: $schema=./contract.schema.json",
        "# Draft contract inferred from a sample of the file. REVIEW EVERY LINE before use:",
        "# roles, types, bounds and the privacy unit are proposals, not facts about the data.",
        f"dataset: {dataset}",
        "version: 1",
    ]
    if unit is not None:
        rows = 10 if unit.name in repeating else 1
        lines += [
            f"privacy_unit: {_key(unit.name)}  # REVIEW: the column naming the person of each row",
            f"max_rows_per_unit: {rows}  # REVIEW: the most rows one person may have in a file "
            "(a public choice: more are dropped at random, and noise grows with it)",
        ]
    else:
        lines.append(
            "rows_are_people: true  # REVIEW: no person column found; this says every row is a "
            "different person. If people can have several rows, name their column as "
            "privacy_unit with max_rows_per_unit instead"
        )
    lines += [
        "budget:",
        "  epsilon_cap: 10.0  # REVIEW: total privacy budget of this dataset",
        "  delta: 1.0e-6",
        "  epsilon_per_release: 1.0",
        "anonymity:",
        "  k: 5  # rows in quasi-identifier classes smaller than k are suppressed",
        "  quasi_identifiers: [" + ", ".join(_key(q) for q in qis) + "]  # REVIEW",
        "columns:",
    ]
    for p in props:
        lines.append(f"  {_key(p.name)}:  # {p.why}")
        lines.append(f"    role: {p.role}")
        lines.append(f"    type: {p.type}")
        if p.action:
            lines.append(f"    action: {p.action}  # keyed HMAC-SHA256 pseudonym")
        elif p.role == "identifier":
            lines.append("    action: drop")
        if p.role == "measure":
            lines.append(f"    bounds: auto  # REVIEW: {p.review}")
        elif p.review:
            lines.append(f"    # REVIEW: {p.review}")
        if p.granularity:
            lines.append(f"    granularity: {p.granularity}")
        if p.generalize:
            lines.append(f"    generalize: {p.generalize}  # REVIEW")
    lines += ["analyses:", "  - kind: summary"]
    return "\n".join(lines) + "\n"


def infer_contract(lf: pl.LazyFrame, dataset: str, *, sample_rows: int = 10_000) -> str:
    """Draft contract YAML for ``lf`` (see the module docstring); reads ``sample_rows`` rows."""
    if not NAME_RE.match(dataset):
        raise ContractError(
            f"dataset name '{dataset}' may only use letters, digits, '-' and '_' (at most 64)"
        )
    sample = lf.head(sample_rows).collect(engine="streaming")
    if sample.width == 0:
        raise ContractError(f"dataset '{dataset}': the file has no columns to infer from")
    props: list[_Proposal] = []
    profiles: dict[str, _Profile] = {}
    repeating: set[str] = set()
    for name in sample.columns:
        prof = _profile(name, sample[name])
        prop = _propose(prof, sample.height)
        if prop.role == "identifier" and 0 < prof.distinct < prof.n:
            repeating.add(name)
        props.append(prop)
        profiles[name] = prof
    return _render(dataset, props, repeating, sample.height, profiles)
