"""One module per `engine` command group; each exposes `register(subparsers)`."""
