"""The `rexbert` command line: one entry point, one subcommand per stage of the project.

`rexbert.embed(model, input, output, ...)` embeds a catalog into Parquet and returns a `datasets.Dataset`
(imported on first use, so `import rexbert` stays light)."""


def __getattr__(name: str):
    if name == "embed":
        from .embed_command import embed

        return embed
    raise AttributeError(f"module 'rexbert' has no attribute {name!r}")
