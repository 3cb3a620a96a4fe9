"""The `triton-pooling` console script: serve, build, encode."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand → module with add_parser(subparsers); imported lazily so `encode` never pays for `build`.
COMMANDS = {
    "serve": "triton_pooling_server.launch.serve_command",
    "build": "triton_pooling_server.builder.build_command",
    "encode": "triton_pooling.encode_command",
    "gateway": "triton_pooling_server.gateway.command",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="triton-pooling", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    argv = sys.argv[1:] if argv is None else argv
    wanted = [a for a in argv if a in COMMANDS][:1] or list(COMMANDS)
    for name in COMMANDS:
        if name in wanted:
            importlib.import_module(COMMANDS[name]).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=f"see 'triton-pooling {name} --help'")
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
