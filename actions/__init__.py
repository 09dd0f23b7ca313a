"""Custom actions of the Atende assistant (rasa-sdk, app env), one module per feature.

Run with `python -m rasa_sdk --actions actions` (or `rasa run actions`); the executor imports every
submodule of this package.
"""
