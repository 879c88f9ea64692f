"""Credentials: references, the encrypted vault and resolution to usable secrets.

* :mod:`.reference` -- ``vault:NAME`` / ``env:VAR`` references (what inventories and settings hold)
* :mod:`.secret` -- :class:`Secret` and :class:`Credential`, values that never print the secret
* :mod:`.vault` -- :class:`Vault`, the AES-256-GCM credential file behind ``fleetfix creds``
* :mod:`.masterkey` -- the vault's master key (``FLEETFIX_MASTER_KEY`` or the 0600 key file)
* :mod:`.resolve` -- :func:`resolve_credential`, reference -> Credential at the edge that logs in

Nothing is imported here: :mod:`orchestrator.config` imports :mod:`.reference`, and loading settings
should not pull in the cryptography stack.
"""
