"""Pure rules of the users service: roles and verbs, passwords, tokens. No I/O."""
