"""Pure rules of entity lists: names, payloads, versions and conflicts (no I/O)."""
