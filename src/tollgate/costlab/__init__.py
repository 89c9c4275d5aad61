"""Cost lab: what agent tasks really cost, what a quality point costs, and which model to pick.

Pure computation over the reference catalog (`tollgate.catalog`); the CLI lives in
`tollgate.cli.cost` and `tollgate.cli.models`. Modules: `agent_sim` (token flow),
`pricing` (per-token and flat-rate), `reference_task` (the blog post's figures),
`quality` + `svg_plot` (cost per point), `pick` (the selection guide's tree).
"""
