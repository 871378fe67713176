"""An emulator of the FME Server / FME Flow REST API subset fmeaa uses (NOT the real product)."""

from fmeaa.emulator.node import EmulatedNode, Sandbox
from fmeaa.emulator.server import Faults

__all__ = ["EmulatedNode", "Faults", "Sandbox"]
