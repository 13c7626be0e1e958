"""The `rexbert` command line: one entry point, one subcommand per stage of the project."""
