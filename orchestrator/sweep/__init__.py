"""The compliance sweep: collection orchestration, findings history, the sweep service.

* :mod:`.plan` -- one job per host: its role's fact probe, its credential (pure)
* :mod:`.credentials` -- every distinct credential resolved once, the vault opened once
* :mod:`.collect` -- the bounded thread pool of WinRM sessions (the only host I/O)
* :mod:`.tenant` -- the Intune tenant's facts through the Graph client
* :mod:`.crls` -- CRL distribution points named by the certificates, fetched with httpx
* :mod:`.assemble` -- outcomes -> :class:`~orchestrator.facts.FleetFacts` and store records (pure)
* :mod:`.diff` -- new / still open / resolved against the previous sweep (pure)
* :mod:`.history` -- the same diff for a stored sweep
* :mod:`.findings`, :mod:`.summary` -- findings and counts as the store and the JSON show them (pure)
* :mod:`.service` -- :func:`run_sweep`, end to end, every edge injectable (:class:`SweepIO`)
"""
