"""Remediation playbooks shipped with fleetfix, as YAML data next to this file.

This is a package only so that the YAML files ship inside the wheel and can be found with
``importlib.resources.files("playbooks")``.
"""
