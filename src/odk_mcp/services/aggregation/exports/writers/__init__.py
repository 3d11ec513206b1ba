"""One writer per file format; each takes rendered rows batch by batch."""
