"""Migration revisions, numbered 0001, 0002, ... (a package so that they ship in the wheel)."""
