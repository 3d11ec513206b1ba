"""Allows `python -m odk_mcp`."""

from odk_mcp.cli import main

main()
