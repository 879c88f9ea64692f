"""The inventory: hosts, groups, the YAML source and ``--limit`` selectors."""

from orchestrator.inventory.loader import load_inventory
from orchestrator.inventory.models import Group, Host, Inventory, Role, Transport, WinRMAuth, WinRMSettings
from orchestrator.inventory.selectors import Selector, parse_selector, select

__all__ = [
    "Group",
    "Host",
    "Inventory",
    "Role",
    "Selector",
    "Transport",
    "WinRMAuth",
    "WinRMSettings",
    "load_inventory",
    "parse_selector",
    "select",
]
