"""``fleetfix init``: write a commented starter ``fleetfix.toml`` and inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli.common import OutputFormat, OutputOption, command, emit_json, stdout
from orchestrator.config import CONFIG_FILENAME
from orchestrator.errors import InputError, SourcePosition

INVENTORY_FILENAME = "inventory.yaml"

STARTER_CONFIG = """\
# fleetfix configuration. Every setting can be overridden by a FLEETFIX_* environment variable
# (nested ones with a double underscore: FLEETFIX_GRAPH__TENANT_ID). Relative paths are relative
# to this file's directory.

# Where fleetfix keeps its SQLite store, the credential vault and its master key.
data_dir = ".fleetfix"

# SQLAlchemy URL of the store. Default: a SQLite file in data_dir, migrated automatically.
# Several workers need PostgreSQL (pip install 'fleetfix[postgres]', then `fleetfix db upgrade`):
# store_url = "postgresql+psycopg://fleetfix@db.corp.example.com/fleetfix"

# Celery broker. Unset = run everything in this process (the embedded default).
# broker_url = "redis://127.0.0.1:6379/0"

# Inventory files, merged in order (see docs/inventory.md).
inventory = ["inventory.yaml"]

# Extra directories of your own playbooks, next to the ones fleetfix ships.
playbook_paths = []

# DEBUG, INFO, WARNING or ERROR; logs go to stderr and never contain secrets.
log_level = "WARNING"

# The Intune tenant, reached through Microsoft Graph. Secrets are references, never values:
# vault:NAME (stored with `fleetfix creds set NAME`) or env:VAR.
[graph]
# tenant_id = "00000000-0000-0000-0000-000000000000"
# client_id = "00000000-0000-0000-0000-000000000000"
# client_secret = "vault:graph-app"
# certificate = "pki/fleetfix-graph.pem"     # use instead of client_secret (preferred)
# authority = "https://login.microsoftonline.com"
# graph_url = "https://graph.microsoft.com"

# Named change windows for `fleetfix run --window NAME`: [DAYS] HH:MM-HH:MM ZONE, in the zone's
# wall-clock time (days name the day a window opens; see docs/engine.md).
# [windows]
# weekend = "Sat-Sun 22:00-04:00 Europe/Amsterdam"
# weeknights = "Mon-Fri 23:00-05:00 Europe/Amsterdam"
"""

STARTER_INVENTORY = """\
# fleetfix inventory (see docs/inventory.md). Hosts have a role (endpoint, rras, ca), an address,
# WinRM settings and a credential *reference*; groups carry shared settings and tags.

defaults:
  winrm:
    transport: https        # HTTPS on 5986; certificates validated against ca_bundle or the system store
    auth: negotiate         # negotiate, ntlm, kerberos, basic, certificate or credssp
  # create it with: fleetfix creds set fleet-admin --username 'CORP\\svc-fleetfix'
  credential: vault:fleet-admin

groups:
  hq:
    tags: {site: hq}

hosts:
  rras-01:
    role: rras
    address: rras-01.corp.example.com
    groups: [hq]
  ca-01:
    role: ca
    address: ca-01.corp.example.com
    groups: [hq]
  ep-001:
    role: endpoint
    address: ep-001.corp.example.com
    groups: [hq]
    tags: {ring: canary}
"""


@command
def init_command(
    directory: Annotated[Path, typer.Argument(help="Where to write the files")] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files")] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Write a commented starter fleetfix.toml and inventory.yaml."""
    files = {directory / CONFIG_FILENAME: STARTER_CONFIG, directory / INVENTORY_FILENAME: STARTER_INVENTORY}
    existing = [path for path in files if path.exists()]
    # Check everything before writing anything, so a refusal leaves the directory untouched.
    if existing and not force:
        raise InputError("already exists; pass --force to overwrite", position=SourcePosition(existing[0]))
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    written = [str(path) for path in files]
    if output is OutputFormat.json:
        emit_json({"written": written})
    else:
        for path_text in written:
            stdout.print(f"wrote {path_text}", highlight=False)
        stdout.print("next: fleetfix creds set fleet-admin, then fleetfix inventory list", highlight=False)
