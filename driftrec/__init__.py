"""driftrec: a recommendation simulator whose users' interests drift.

Importing ``driftrec`` (or ``driftrec.envs``) registers every scenario with Gymnasium, so
``gymnasium.make("driftrec/Stationary-v1")`` works from any script. ``driftrec.envs`` needs only
numpy and gymnasium; the agents (``driftrec.agents``) import torch lazily.
"""

from __future__ import annotations

from driftrec import envs as envs
from driftrec.envs.scenarios import register_scenario

__version__ = "0.2.0"
"""Bumped whenever what a run produces changes (it is in every run's fingerprint)."""

__all__ = ["envs", "register_scenario", "__version__"]
