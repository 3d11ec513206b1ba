"""The tiny shared kernel: actors, problems, clock, database unit of work."""
