"""Who is who: the users file, the two roles, and checking a login.

Two audiences (ARCHITECTURE "Two audiences"): **viewers** see differentially private
releases only; **operators**, who run the pipeline and could read the bucket anyway, also
see exact run counts, rejection and quarantine reasons, and may upload files to the
datasets the users file allows them. The users file (``PA_DASHBOARD_USERS_FILE``)::

    users:
      - name: ana
        role: viewer
        password_hash: pbkdf2_sha256$600000$<salt>$<hash>   # python -m dashboard hash-password
      - name: olu
        role: operator
        password_hash: pbkdf2_sha256$600000$<salt>$<hash>
        upload_datasets: [employees, payroll]              # or "*"; default: none

Without a users file, on loopback, the local user is the operator (:data:`LOCAL_OPERATOR`);
off loopback the dashboard refuses to start without one (``DashboardSettings.check_startup``).

A successful PBKDF2 check is remembered as a keyed MAC of the password under a random
per-process key, so the many requests of one page view do not each pay for PBKDF2; the
password itself is never kept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dashboard.passwords import DEFAULT_ITERATIONS, PasswordHashError, parse_hash, verify_password
from dashboard.settings import DashboardSettings
from privacy.errors import PipelineError
from privacy.names import DATASET_RE
from privacy.strict_yaml import unique_key_loader

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class UsersFileError(PipelineError):
    """The users file cannot be read or is not a valid list of users.

    >>> raise UsersFileError("users file /etc/pa/users.yaml: users.1.role: must be viewer or operator")
    """

    kind = "users_file"


class RoleRefused(PipelineError):
    """The signed-in user's role does not allow this (an operator page, an upload).

    >>> raise RoleRefused("user 'olu' may not upload to dataset 'payroll'")
    """

    kind = "not_allowed"


@dataclass(frozen=True)
class User:
    """A signed-in person: name, role and, for operators, where they may upload."""

    name: str
    role: Role
    #: datasets this user may upload to (operators only)
    upload_datasets: frozenset[str] = frozenset()
    #: may upload to every dataset (``upload_datasets: "*"``)
    upload_any: bool = False
    #: the loopback user of a dashboard without a users file
    local: bool = False

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def may_upload(self, dataset: str) -> bool:
        return self.is_operator and (self.upload_any or dataset in self.upload_datasets)

    def uploadable(self, known: list[str]) -> list[str]:
        """The datasets of ``known`` this user may upload to (plus any others listed)."""
        if not self.is_operator:
            return []
        if self.upload_any:
            return list(known)
        return [*(n for n in known if n in self.upload_datasets),
                *sorted(self.upload_datasets - set(known))]

    def describe(self) -> str:
        return "local operator (no login on loopback)" if self.local else (
            f"{self.name} ({self.role})")


#: the user of a loopback dashboard without a users file: today's single-user behaviour
LOCAL_OPERATOR = User("local", "operator", upload_any=True, local=True)
#: who a request is when no login hook has identified it: the least privileged role
NOBODY = User("anonymous", "viewer")


# ----------------------------------------------------------------------------- the file


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: Role
    password_hash: str = Field(repr=False)
    upload_datasets: list[str] | Literal["*"] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("names use letters, digits, '.', '_', '@' and '-' (no ':')")
        return v

    @field_validator("upload_datasets")
    @classmethod
    def _datasets(cls, v: list[str] | str) -> list[str] | str:
        if isinstance(v, list):
            bad = [d for d in v if not DATASET_RE.fullmatch(d)]  # privacy.names' rule
            if bad:
                raise ValueError("dataset names use letters, digits, '-' and '_'")
        return v


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[_Entry] = Field(min_length=1)


#: safe YAML that refuses a key given twice (``role: viewer`` then ``role: operator``)
_UniqueKeyLoader = unique_key_loader("key '{key}' is given twice")


def parse_users(text: str, source: str = "users file") -> UserDirectory:
    """The users of a users file's text; UsersFileError names the entry and the field (never
    a password hash)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise UsersFileError(f"{source}: {problem}{where}") from None
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        parts = []
        for e in exc.errors(include_url=False, include_input=False, include_context=False):
            loc = ".".join(str(p) for p in e["loc"])
            parts.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}")
        raise UsersFileError(
            f"{source}: " + "; ".join(parts) + " (docs/dashboard.md, \"Users and roles\")"
        ) from None
    users: dict[str, User] = {}
    hashes: dict[str, str] = {}
    for i, entry in enumerate(parsed.users):
        if entry.name in users:
            raise UsersFileError(f"{source}: users.{i}: user '{entry.name}' is listed twice")
        if entry.role == "viewer" and entry.upload_datasets:
            raise UsersFileError(
                f"{source}: users.{i} ({entry.name}): viewers cannot upload; remove "
                "upload_datasets or make the user an operator")
        try:
            parse_hash(entry.password_hash)
        except PasswordHashError as exc:
            raise UsersFileError(f"{source}: users.{i} ({entry.name}): {exc}") from None
        any_dataset = entry.upload_datasets == "*"
        users[entry.name] = User(
            entry.name, entry.role,
            upload_datasets=frozenset() if any_dataset else frozenset(entry.upload_datasets),
            upload_any=any_dataset,
        )
        hashes[entry.name] = entry.password_hash
    return UserDirectory(users, hashes)


def load_users(settings: DashboardSettings) -> UserDirectory | None:
    """The users the settings name (file or content), or None: no login, loopback only."""
    if settings.users is not None:
        return parse_users(settings.users.get_secret_value(), "PA_DASHBOARD_USERS")
    if settings.users_file is None:
        return None
    path = settings.users_file.expanduser()
    try:
        text = path.read_text(encoding="utf-8")  # the one file the dashboard reads
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UsersFileError(
            f"users file {path} (PA_DASHBOARD_USERS_FILE) cannot be read: {reason}; check "
            "the path and that the dashboard's user may read it"
        ) from None
    return parse_users(text, f"users file {path}")


# ----------------------------------------------------------------------------- logins


@dataclass
class UserDirectory:
    """The users of one users file, and the check of a name and password against it."""

    users: dict[str, User]
    _hashes: dict[str, str] = field(repr=False)
    _mac_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _verified: dict[str, bytes] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _mac(self, name: str, password: str) -> bytes:
        return hmac.new(self._mac_key, f"{name}\0{password}".encode(), hashlib.sha256).digest()

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (same work for unknown names)."""
        user = self.users.get(name)
        line = self._hashes.get(name)
        if user is None or line is None:
            # as slow as a real check, so a wrong name cannot be told from a wrong password
            hashlib.pbkdf2_hmac("sha256", password.encode(), b"pa-no-such-user", DEFAULT_ITERATIONS)
            return None
        mac = self._mac(name, password)
        with self._lock:
            known = self._verified.get(name)
        if known is not None and hmac.compare_digest(known, mac):
            return user
        if not verify_password(password, line):
            return None
        with self._lock:
            self._verified[name] = mac
        return user
