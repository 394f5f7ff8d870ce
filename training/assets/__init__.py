"""Files the project ships with its code: small fixtures that need no shared data folder."""

from __future__ import annotations

from pathlib import Path

# Original Tajik prose (school, family, seasons, Navruz, mountains, health, a teacher's Q&A): the text the
# tiny demo and test models are trained on.
TAJIK_SAMPLE = Path(__file__).with_name("tajik_sample.txt")
