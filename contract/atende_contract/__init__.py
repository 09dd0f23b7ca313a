"""What both Python environments of Atende must agree on, written once.

The bot env (Rasa 3.6, ``connectors/``) and the app env (``actions/``, ``helpdesk/``,
``console/``) both install this package (``contract/``). It depends on the standard library and
PyJWT only, so it imports in either environment without Rasa or SQLAlchemy.

- :mod:`atende_contract.channels`: channel names and the form of conversation ids;
- :mod:`atende_contract.text`: message limits and the neutralisation of typed ``/intent`` text;
- :mod:`atende_contract.webtoken`: the website token (JWT) policy and its verification;
- :mod:`atende_contract.attestation`: the per-turn identity attestation that a connector signs
  after it verified an identity, and that the action server verifies before trusting it.
"""
