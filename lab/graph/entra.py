"""Entra ID for the lab: OpenID discovery, app-only tokens, and checking them on Graph's side.

The token endpoint serves the client-credentials grant as msal sends it:

* with a client secret in the form body (``client_secret``);
* with a client assertion (``private_key_jwt``): a JWT signed by the key of the certificate
  registered for the app, ``x5t`` (SHA-1, RS256) or ``x5t#S256`` (SHA-256, PS256) naming that
  certificate, the token endpoint as audience, the client id as issuer and subject, not expired.
  msal keeps the base64url padding on thumbprints; Entra ignores it, and so does the lab.

Access tokens are RS256 JWTs with the app's roles.  Their ``exp`` is ``token_validity_s`` after
issue (``token_lifetime_s`` unless set shorter, to expire tokens mid-run), and
:meth:`Entra.revoke_all` invalidates every token issued so far (a revoked or expired token).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from lab.graph.config import AppRegistration, TenantConfig

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_RESOURCE = "https://graph.microsoft.com"


@dataclass(frozen=True)
class TokenReply:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Caller:
    """Who a valid bearer token belongs to."""

    app_id: str
    roles: frozenset[str]


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired or revoked; the text is Graph's message."""


def _thumbprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    return base64.urlsafe_b64encode(cert.fingerprint(algorithm)).decode().rstrip("=")


def _error(status: int, code: str, description: str) -> TokenReply:
    trace = str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    body = {
        "error": code,
        "error_description": f"{description}\r\nTrace ID: {trace}\r\nTimestamp: {stamp}",
        "error_codes": [int(code) for code in re.findall(r"^AADSTS(\d+)", description)],
        "trace_id": trace,
    }
    return TokenReply(status, body)


class Entra:
    """The lab's Entra ID for one tenant."""

    def __init__(self, config: TenantConfig, base_url: str) -> None:
        self.config = config
        self.base_url = base_url
        self.tenant = config.tenant_id
        self.apps = {app.client_id: app for app in config.apps}
        self._certs = {
            app.client_id: x509.load_pem_x509_certificate(app.certificate_pem.encode())
            for app in config.apps
            if app.certificate_pem
        }
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_id = uuid.uuid4().hex
        self._not_before = 0.0  # tokens issued before this moment are revoked
        self.token_failures = config.faults.token_failures
        self.issued = 0
        self.audiences = {GRAPH_RESOURCE, base_url}

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    def discovery(self, *, v2: bool) -> dict[str, Any]:
        base = f"{self.base_url}/{self.tenant}"
        return {
            "issuer": f"{base}/v2.0" if v2 else base,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": self.token_endpoint,
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "tenant_region_scope": "EU",
        }

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self._key_id, "use": "sig", "alg": "RS256"}]}

    # --- the token endpoint --------------------------------------------------------------------------

    def token(self, form: Mapping[str, str]) -> TokenReply:
        """Answer one POST to the token endpoint."""
        if self.token_failures > 0:
            self.token_failures -= 1
            reply = _error(503, "temporarily_unavailable", "AADSTS90033: A transient error has occurred.")
            return TokenReply(503, reply.body, (("Retry-After", "1"),))
        if form.get("grant_type") != "client_credentials":
            return _error(
                400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type."
            )
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return _error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application '{form.get('client_id')}' was not found in the directory.",
            )
        failure = self._authenticate(app, form)
        if failure is not None:
            return failure
        scope = form.get("scope", "")
        resource = scope.removesuffix("/.default")
        if not scope.endswith("/.default") or resource not in self.audiences:
            return _error(
                400, "invalid_scope", f"AADSTS1002012: The provided value for scope {scope} is not valid."
            )
        return TokenReply(200, self._issue(app, resource))

    def _authenticate(self, app: AppRegistration, form: Mapping[str, str]) -> TokenReply | None:
        if "client_secret" in form:
            if app.secret is None or form["client_secret"] != app.secret:
                return _error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
            return None
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            return _error(
                401,
                "invalid_client",
                "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required.",
            )
        return self._check_assertion(app, form["client_assertion"])

    def _check_assertion(self, app: AppRegistration, assertion: str) -> TokenReply | None:
        cert = self._certs.get(app.client_id)
        if cert is None:
            return _error(
                401, "invalid_client", "AADSTS700027: No certificate is registered for the application."
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return _error(401, "invalid_client", "AADSTS50027: JWT token is invalid or malformed.")
        sha1 = str(header.get("x5t") or "").rstrip("=")
        sha256 = str(header.get("x5t#S256") or "").rstrip("=")
        if sha1 != _thumbprint(cert, hashes.SHA1()) and sha256 != _thumbprint(cert, hashes.SHA256()):  # noqa: S303
            return _error(
                401,
                "invalid_client",
                "AADSTS700027: The certificate with identifier used to sign the client assertion "
                "is not registered on application.",
            )
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=self.token_endpoint,
                issuer=app.client_id,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as exc:
            return _error(
                401, "invalid_client", f"AADSTS700027: Client assertion failed signature validation ({exc})."
            )
        if claims.get("sub") != app.client_id:
            return _error(
                401, "invalid_client", "AADSTS700023: Client assertion subject does not match the client id."
            )
        return None

    def _issue(self, app: AppRegistration, resource: str) -> dict[str, Any]:
        now = time.time()
        validity = self.config.token_validity_s or self.config.token_lifetime_s
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant}/",
            "iat": int(now),
            "nbf": int(now),
            "exp": now + validity,
            "issued_at": now,  # sub-second issue time, so revocation can tell tokens apart
            "appid": app.client_id,
            "azp": app.client_id,
            "app_displayname": app.display_name,
            "tid": self.tenant,
            "roles": list(app.roles),
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
        }
        self.issued += 1
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._key_id})
        life = self.config.token_lifetime_s
        return {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token}

    # --- Graph's side ----------------------------------------------------------------------------------

    def revoke_all(self) -> None:
        """Every token issued until now stops working (as if it had expired)."""
        self._not_before = time.time()

    def verify(self, authorization: str | None) -> Caller:
        """The caller behind an ``Authorization`` header; :class:`InvalidToken` otherwise."""
        if not authorization or not authorization.startswith("Bearer "):
            raise InvalidToken("Access token is empty.")
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer "),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=sorted(self.audiences),
                options={"require": ["exp", "aud", "tid"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Lifetime validation failed, the token is expired.") from None
        except jwt.PyJWTError:
            raise InvalidToken("Invalid JWT token. Token format not valid.") from None
        if claims["tid"] != self.tenant:
            raise InvalidToken("Invalid tenant in token.")
        if float(claims.get("issued_at", 0)) < self._not_before:
            raise InvalidToken("Lifetime validation failed, the token is expired.")
        return Caller(app_id=str(claims["appid"]), roles=frozenset(claims.get("roles", ())))


__all__ = ["ASSERTION_TYPE", "GRAPH_RESOURCE", "Caller", "Entra", "InvalidToken", "TokenReply"]
