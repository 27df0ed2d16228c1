"""One module per `nucleus` command; each has `run(args, context) -> int`."""
