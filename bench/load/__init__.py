"""Load test of the production topology: `python -m bench.load --help`."""
