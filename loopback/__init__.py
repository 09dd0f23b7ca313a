"""Real HTTP servers on loopback that stand in for external services (an OpenAI-compatible chat
API today), for the tests, the benchmarks and local demos. Nothing here is used in production."""
