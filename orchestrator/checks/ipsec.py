"""IKEv2 IPsec policies: the server's and the clients', in one spelling so they can be compared.

PowerShell spells the same algorithm in different enums on each side (and ProfileXML differs
again, e.g. ``AES_GCM_128`` for ``GCMAES128``), so values are compared case-insensitively with
underscores removed.
"""

from __future__ import annotations

from orchestrator.facts.endpoint import IpsecPolicy
from orchestrator.facts.rras import Ikev2ServerPolicy

FIELDS = (
    "authentication_transform_constants",
    "cipher_transform_constants",
    "encryption_method",
    "integrity_check_method",
    "pfs_group",
    "dh_group",
)
WEAK = frozenset({"des", "des3", "md5", "sha1", "md596", "sha196", "group1", "group2", "pfs1", "pfs2"})
_ALIASES = {"aesgcm128": "gcmaes128", "aesgcm192": "gcmaes192", "aesgcm256": "gcmaes256"}

Policy = tuple[str | None, ...]


def _norm(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.replace("_", "").replace("-", "").casefold()
    return _ALIASES.get(key, key)


def policy_tuple(policy: IpsecPolicy | Ikev2ServerPolicy) -> Policy:
    return tuple(_norm(getattr(policy, name)) for name in FIELDS)


def server_policy(policy: Ikev2ServerPolicy) -> Policy | None:
    """The server's custom policy, or None when it negotiates Windows' defaults.

    ``custom_policy`` is null when the cmdlet did not report the flag; then any algorithm set
    means a custom policy (the defaults leave them unset).
    """
    values = policy_tuple(policy)
    custom = policy.custom_policy if policy.custom_policy is not None else any(values)
    return values if custom else None


def as_dict(policy: Policy | None) -> dict[str, str | None] | None:
    return None if policy is None else dict(zip(FIELDS, policy, strict=True))


def weak_values(policy: Ikev2ServerPolicy) -> list[str]:
    return sorted({value for value in policy_tuple(policy) if value in WEAK})


__all__ = ["FIELDS", "WEAK", "Policy", "as_dict", "policy_tuple", "server_policy", "weak_values"]
