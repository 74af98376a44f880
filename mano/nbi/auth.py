"""Clients, projects and bearer tokens of the NBI (OAuth 2.0 client credentials, RFC 6749
clause 4.4, as SOL013 clause 8.3 prescribes).

- A client (``client_id``) belongs to one project, the tenant whose resources it sees and
  acts on. Project ``admin`` may also manage clients. Secrets are random (32 bytes,
  URL-safe) and only their argon2 hash is kept (``pwdlib``).
- ``POST /oauth2/token`` with ``grant_type=client_credentials`` and the client's
  credentials (HTTP Basic, or ``client_id``/``client_secret`` in the form) gives an opaque
  bearer token that expires after ``ttl`` seconds. Only its SHA-256 is stored, with the
  client, project and expiry, so tokens survive an NFVO restart and leak nothing from a
  copied database.
- Every SOL005 request carries ``Authorization: Bearer TOKEN``; without one, or with an
  unknown or expired one, it is refused with 401 (``WWW-Authenticate: Bearer``).
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from pwdlib import PasswordHash

from mano.errors import ConflictError, MANOError, NotFoundError
from mano.nbi.records import Records

CLIENT, TOKEN = "client", "token"
ADMIN = "admin"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")


class AuthError(MANOError):
    """A request whose credentials fail: ``status`` 401 (who are you?) or 403 (not
    allowed); ``oauth_error`` is the RFC 6749/6750 error code."""

    def __init__(self, status: int, detail: str, oauth_error: str):
        super().__init__(detail)
        self.status, self.oauth_error = status, oauth_error


class Auth:
    """Client registry and token issuer/checker over ``records``."""

    def __init__(self, records: Records, *, ttl: float = 3600.0,
                 clock: Callable[[], float] = time.time):
        self.records, self.ttl, self.clock = records, ttl, clock
        self._hasher = PasswordHash.recommended()

    # ---- clients ---------------------------------------------------------------------------
    def add_client(self, client_id: str, project: str) -> str:
        """Register a client in ``project``; its secret (shown once)."""
        for what, v in (("client_id", client_id), ("project", project)):
            if not NAME.fullmatch(v):
                raise AuthError(400, f"{what} {v!r}: a letter, then up to 63 letters, digits, "
                                     f"'_', '.', '-'", "invalid_request")
        if self.records.find(CLIENT, client_id) is not None:
            raise ConflictError(f"client {client_id!r} exists already")
        secret = secrets.token_urlsafe(32)
        self.records.put(CLIENT, client_id, project, {"project": project,
                                                      "secret": self._hasher.hash(secret)})
        return secret

    def clients(self) -> list[dict]:
        return [{"clientId": i, "project": t} for i, t, _ in self.records.list(CLIENT)]

    def remove_client(self, client_id: str) -> None:
        if not self.records.delete(CLIENT, client_id):
            raise NotFoundError(f"no client {client_id!r}")
        for tid, _, tok in self.records.list(TOKEN):
            if tok["client"] == client_id:
                self.records.delete(TOKEN, tid)

    def ensure_admin(self, secret_file: Path) -> bool:
        """On first start: create client ``admin`` (project ``admin``) and write its secret
        to ``secret_file`` (mode 0600). True if it was created now."""
        if self.records.find(CLIENT, ADMIN) is not None:
            return False
        secret = self.add_client(ADMIN, ADMIN)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return True

    # ---- tokens ----------------------------------------------------------------------------
    def issue(self, form: dict[str, str], authorization: str | None) -> dict:
        """The token endpoint: an RFC 6749 5.1 answer, or ``AuthError`` (RFC 6749 5.2)."""
        if form.get("grant_type") != "client_credentials":
            raise AuthError(400, f"grant_type {form.get('grant_type')!r}: only "
                                 f"client_credentials is supported", "unsupported_grant_type")
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                raw = base64.b64decode(authorization[6:].strip()).decode()
                client_id, _, secret = raw.partition(":")
            except (ValueError, UnicodeDecodeError):
                raise AuthError(401, "malformed Basic credentials", "invalid_client") from None
        if not client_id or not secret:
            raise AuthError(401, "client credentials missing (HTTP Basic, or client_id and "
                                 "client_secret in the form)", "invalid_client")
        found = self.records.find(CLIENT, client_id)
        if found is None or not self._hasher.verify(secret, found[1]["secret"]):
            raise AuthError(401, "unknown client or wrong secret", "invalid_client")
        token = secrets.token_urlsafe(32)
        self.records.put(TOKEN, _digest(token), found[0], {
            "client": client_id, "expires": self.clock() + self.ttl})
        self._forget_expired()
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(self.ttl)}

    def principal(self, authorization: str | None) -> tuple[str, str]:
        """(client_id, project) of a request's bearer token, or ``AuthError`` 401."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError(401, "no bearer token: get one from POST /oauth2/token and send "
                                 "it as 'Authorization: Bearer TOKEN'", "invalid_request")
        found = self.records.find(TOKEN, _digest(authorization[7:].strip()))
        if found is None:
            raise AuthError(401, "unknown bearer token", "invalid_token")
        if found[1]["expires"] <= self.clock():
            raise AuthError(401, "the bearer token has expired; get a new one",
                            "invalid_token")
        return found[1]["client"], found[0]

    def tenant(self, authorization: str | None) -> str:
        return self.principal(authorization)[1]

    def need_admin(self, authorization: str | None) -> None:
        client, project = self.principal(authorization)
        if project != ADMIN:
            raise AuthError(403, f"client {client!r} of project {project!r} may not manage "
                                 f"clients; only project {ADMIN!r} may", "insufficient_scope")

    def _forget_expired(self) -> None:
        now = self.clock()
        for tid, _, tok in self.records.list(TOKEN):
            if tok["expires"] <= now:
                self.records.delete(TOKEN, tid)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
