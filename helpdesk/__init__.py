"""Atende help-desk domain: models, migrations and the services that hold the rules."""
