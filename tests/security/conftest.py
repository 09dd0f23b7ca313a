"""The console attack tests use the console tests' data set and Rasa stand-in (one definition each)."""
from tests.console.conftest import ids, rasa  # noqa: F401 - fixtures, registered by being here
