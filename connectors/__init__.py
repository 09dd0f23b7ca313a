"""Custom Rasa input/output channels for Atende (bot env: never imports helpdesk/, actions/, knowledge/)."""
