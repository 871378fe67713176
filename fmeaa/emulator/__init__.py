"""An emulator of the FME Server / FME Flow REST API subset fmeaa uses (NOT the real product)."""

from fmeaa.emulator.faults import Faults
from fmeaa.emulator.node import EmulatedNode, Sandbox

__all__ = ["EmulatedNode", "Faults", "Sandbox"]
