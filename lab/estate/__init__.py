"""The simulated Always On VPN estate of a scenario: PKI, Windows state, faults, truth, runtime."""
