"""`python -m training --config ...` / `accelerate launch -m training --config ...`."""

import argparse
import sys

from .cli import add_train_arguments, run_train

parser = argparse.ArgumentParser(prog="python -m training", description="RexBERT pretraining (one phase or a "
                                                                         "curriculum folder)")
add_train_arguments(parser)
try:
    run_train(parser.parse_args())
except (ValueError, OSError) as error:
    print(f"training: error: {error}", file=sys.stderr)
    sys.exit(2)
