"""A stack's settings as the program takes them: the model (settings.py) and, with it, each tier's
own rules of its configuration, every problem named at once before anything is created. The model
sits below the tiers; this module, above both, is where they meet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from . import kafka_config, postgres_config
from .settings import Settings, config_from_runtime, parse

TIER_CHECKS = (postgres_config.memory_problem, postgres_config.storage_problem, kafka_config.storage_problem)


def parse_settings(project: str, stack: str, raw: Mapping[str, Any]) -> Settings:
    """Validate the whole configuration; raise SettingsError naming every problem at once."""
    return parse(project, stack, raw, TIER_CHECKS)


def load_settings() -> Settings:
    project = pulumi.get_project()
    return parse_settings(project, pulumi.get_stack(), config_from_runtime(project))
