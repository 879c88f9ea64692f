"""Scheduled jobs: cron expressions evaluated in each job's zone, the fire ledger keyed by
(job, local date), the beat's lease, and ``fleetfix beat`` (docs/schedule.md)."""
