"""Well-known paths of the repository checkout."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
MODELS = ROOT / "models"
BOT_VENV = ROOT / ".venv-bot"
APP_VENV = ROOT / ".venv"
RASA_BIN = BOT_VENV / "bin" / "rasa"
BOT_PYTHON = BOT_VENV / "bin" / "python"
APP_PYTHON = APP_VENV / "bin" / "python"
CONFIG = ROOT / "config.yml"
DOMAIN = ROOT / "domain.yml"
BOT_DATA = ROOT / "bot" / "data"
CREDENTIALS = ROOT / "bot" / "credentials.yml"
