"""fleetfix init."""


def init_command() -> None:
    """Write a commented starter fleetfix.toml and inventory."""
