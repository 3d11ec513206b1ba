"""Pure export logic: options, table layout, row rendering (no I/O)."""
