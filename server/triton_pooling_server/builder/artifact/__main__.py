"""Build the artifacts of model folders from their config.pbtxt (for folders written by hand or by tests;
`triton-pooling build` does this itself):

    python -m triton_pooling_server.builder.artifact MODEL_FOLDER [MODEL_FOLDER ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from triton_pooling_backend.errors import ModelConfigError
from .folder import ensure_folder
from .request import ArtifactError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triton_pooling_server.builder.artifact", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", metavar="MODEL_FOLDER")
    parser.add_argument("--cache-dir", type=Path, help="artifact cache (default: $TRITON_POOLING_CACHE or "
                                                       "~/.cache/triton-pooling/artifacts)")
    args = parser.parse_args(argv)
    for folder in args.folders:
        try:
            status = ensure_folder(folder, args.cache_dir)
        except (ArtifactError, ModelConfigError, OSError) as e:
            print(f"error: {folder}: {e}", file=sys.stderr)
            return 2
        print(f"{status}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
