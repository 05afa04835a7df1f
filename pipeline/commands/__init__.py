"""Sub-commands of `curate` beyond run / plan / validate: each module has `register(subparsers)`."""
