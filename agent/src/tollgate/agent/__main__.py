"""`python -m tollgate.agent resume|queue …`: the resumer and the queue listing, toolkit alone."""

from tollgate.agent.cli import main

raise SystemExit(main())
