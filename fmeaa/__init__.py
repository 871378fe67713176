"""fmeaa: keep N independent FME Server / FME Flow installations (Active-Active) identical."""

__version__ = "0.1.0"
