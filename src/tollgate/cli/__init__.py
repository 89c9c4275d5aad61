"""The `tollgate` command line: serving, operator actions, and the offline tools."""
