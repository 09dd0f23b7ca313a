"""Custom Rasa input/output channels for Atende (bot env: never imports helpdesk/, actions/, knowledge/).

Rasa imports this package when it loads the channels named in bot/credentials.yml and the tracker
store named in endpoints.yml; in a Rasa process, importing it also applies the hot-path fix in
`rasa_speedups` (see there). Processes that do not run Rasa (the WhatsApp gateway, the app env's
tests of the pure helpers) import the package without loading Rasa and TensorFlow.
"""
import sys as _sys

if "rasa" in _sys.modules:  # a Rasa process: Rasa was imported before any channel or store
    from . import rasa_speedups as _speedups

    _speedups.install()
