"""The emulator's routes, one module per resource family, mirroring the REST client's groups.

Importing this package registers every route on `fmeaa.emulator.server.ROUTER` (the server module
imports it at its end). Registration order is the order of the imports below, which follows the
order the routes had when they all lived in server.py (jobs and licensing, which came last there,
now register with the rest of `system`). Router.match takes the first route whose pattern and
method match, but no two routes of one method match the same path, so the order between families
does not change which handler answers.
"""

# isort: off
from fmeaa.emulator.routes import system
from fmeaa.emulator.routes import repositories
from fmeaa.emulator.routes import automations
from fmeaa.emulator.routes import connections
from fmeaa.emulator.routes import resources
from fmeaa.emulator.routes import v4_deployment
from fmeaa.emulator.routes import v4_items
from fmeaa.emulator.routes import v4_projects
from fmeaa.emulator.routes import v4_resources
# isort: on

__all__ = ["automations", "connections", "repositories", "resources", "system", "v4_deployment",
           "v4_items", "v4_projects", "v4_resources"]
