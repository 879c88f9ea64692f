"""The MDM NodeCache: the VPNv2 ProfileXML Intune *intends* a device to have.

Windows keeps what the MDM server last set under
``HKLM:\\SOFTWARE\\Microsoft\\Provisioning\\NodeCache\\CSP\\<Device or user SID>\\MS DM Server\\Nodes\\<n>``
(``NodeUri``, ``ExpectedValue``).  The cache outlives the profile itself: when the Windows 11
21H2 bug deletes an updated profile (KB5008353), the intent stays here, which is how "intended vs
actual" shows the profile missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

MdmScope = Literal["device", "user"]


@dataclass(frozen=True)
class MdmNode:
    """One cached VPNv2 ProfileXML node."""

    scope: MdmScope
    sid: str | None
    name: str
    profile_xml: str | None

    @property
    def node_uri(self) -> str:
        root = "./Device" if self.scope == "device" else "./User"
        return f"{root}/Vendor/MSFT/VPNv2/{quote(self.name)}/ProfileXML"


@dataclass
class MdmNodeCache:
    """Cached nodes by profile name (a device holds one profile per name)."""

    nodes: dict[str, MdmNode] = field(default_factory=dict)

    def set(self, node: MdmNode) -> None:
        self.nodes[node.name.lower()] = node

    def remove(self, name: str) -> MdmNode | None:
        return self.nodes.pop(name.lower(), None)

    def get(self, name: str) -> MdmNode | None:
        return self.nodes.get(name.lower())

    def all(self) -> tuple[MdmNode, ...]:
        return tuple(self.nodes.values())


__all__ = ["MdmNode", "MdmNodeCache", "MdmScope"]
