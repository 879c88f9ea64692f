"""Credentials: references, the encrypted vault and resolution to usable secrets."""
