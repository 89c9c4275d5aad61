"""`tollgate agent …`: resume parked agent sessions, and look inside the parking queue.

The commands live in the agent toolkit (`tollgate.agent.cli`, distribution `tollgate-agent`),
so an install of the toolkit alone has them too, as `tollgate-agent …` or
`python -m tollgate.agent …`. This module plugs them into the gateway's `tollgate` CLI.
"""

from __future__ import annotations

import sys

from tollgate.agent.cli import cmd_queue, cmd_resume, main, register

__all__ = ["cmd_queue", "cmd_resume", "main", "register"]

if __name__ == "__main__":
    sys.exit(main())
