"""One module per `analysis` command group; each exposes `register(subparsers)`."""
