"""fmeaa: keep N independent FME Server / FME Flow installations (Active-Active) identical."""

import logging

__version__ = "0.1.0"

# botocore logs whole request and response bodies at DEBUG, Secrets Manager values included.
# Cap those two loggers so that even an operator's `DEBUG` logging never writes a secret.
for _name in ("botocore.endpoint", "botocore.parsers"):
    logging.getLogger(_name).setLevel(logging.INFO)
