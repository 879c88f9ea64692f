"""Reports: what a compliance sweep amounts to, for people (HTML), for tools (CSV, JSON, Prometheus)
and for chat channels (webhooks).

Pure core, thin edges, like the rest of fleetfix:

* :mod:`.model` -- :class:`~.model.SweepReport`, a frozen value built from stored sweep data (pure)
* :mod:`.source` -- the store queries that feed it (bounded for 10,000 hosts: no query per host)
* :mod:`.svg` -- inline SVG charts: trend lines, stacked areas, bars (pure)
* :mod:`.html` -- the self-contained HTML page (Jinja2, autoescaped, ``templates/``)
* :mod:`.export` -- CSV and JSON exports with a versioned schema (docs/reports.md) (pure)
* :mod:`.metrics` -- Prometheus text exposition for node_exporter's textfile collector (pure)
* :mod:`.notify` -- webhook notifications after a sweep: generic JSON, Teams, Slack
* :mod:`.output` -- writing a report atomically (a temporary file renamed into place)

A report kind is a model plus its renderers: the sweep report is ``model`` + ``html`` (template
``sweep.html.j2``) + ``export``; a playbook-run report will sit beside it the same way (its own
model module and template), sharing :mod:`.svg`, :mod:`.output` and the HTML environment.

Nothing is imported here, so ``fleetfix sweep`` pays for Jinja2 only when it renders a report.
"""
