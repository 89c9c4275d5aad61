"""Configuration: one TOML file, environment overrides, validated into frozen dataclasses."""

from tollgate.config.load import ConfigError, load_config
from tollgate.config.schema import (
    Config,
    ModelConfig,
    PlanConfig,
    RouteProfile,
    ServerConfig,
    UpstreamConfig,
)

__all__ = [
    "Config",
    "ConfigError",
    "ModelConfig",
    "PlanConfig",
    "RouteProfile",
    "ServerConfig",
    "UpstreamConfig",
    "load_config",
]
