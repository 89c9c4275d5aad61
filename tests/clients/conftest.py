"""Real clients (coding agents and agent SDKs) against the real gateway.

Each client family keeps its fixtures in its own module; they are gathered here.
"""

from tests.clients.anthropic_fixtures import *  # noqa: F401,F403
from tests.clients.openai_fixtures import *  # noqa: F401,F403
