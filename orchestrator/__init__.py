"""fleetfix: find and fix Always On VPN misconfigurations across a Windows fleet."""

__version__ = "0.1.0"
