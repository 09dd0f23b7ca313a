"""Custom Rasa input/output channels for Atende (bot env: never imports helpdesk/, actions/, knowledge/).

Rasa imports this package when it loads the channels named in bot/credentials.yml; importing it
also applies the hot-path fix in `rasa_speedups` (see there).
"""
try:  # the package's pure helpers are importable without Rasa (e.g. by the app env's tests)
    from . import rasa_speedups as _speedups

    _speedups.install()
except ImportError:  # pragma: no cover - Rasa not installed in this environment
    pass
