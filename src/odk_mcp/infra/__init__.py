"""Infrastructure shared by the process roles: the embedded database and migrations."""
