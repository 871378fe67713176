"""Pydantic models of the stack configuration (and, for the sync CLI, of content manifests)."""

from config.loader import StackConfigError, load_stack_config, parse_stack_config
from config.stack import StackConfig

__all__ = ["StackConfig", "StackConfigError", "load_stack_config", "parse_stack_config"]
