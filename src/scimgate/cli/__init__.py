"""The ``scimgate`` command line: thin wrappers that parse, call a service, and print."""
