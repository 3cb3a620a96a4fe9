"""The client's one dynamic piece of metadata: where its `triton-pooling-contract` dependency comes from.

The contract (../contract) is on no package index, so a bare `triton-pooling-contract` requirement made
`pip install ./client` fail on a machine with only the client's dependencies. Every way the client is installed
from source has the whole repository beside it — `pip install ./client` in a checkout, and
`pip install "git+<url>#subdirectory=client"`, which clones the whole repository and builds in place — so when
../contract is there, a regular (wheel) build names it by its absolute file URL (PEP 508 has no relative form,
hence this file rather than a static list in pyproject.toml), and pip installs it from there. Without it (an
sdist unpacked alone) the plain name stays.

An editable build (`pip install -e ./client`) keeps the plain name: pip cannot reconcile a file-URL dependency
with the editable `-e ./contract` that `make install` gives in the same command (it refuses both as
"conflicting dependencies", measured with pip 23.2 and 26.3), and an editable client is a checkout's, installed
with its editable contract. The build hooks below are setuptools' own; the `*_editable` ones only mark the build
as editable first (pyproject.toml names this file as the backend: `backend-path = ["."]`, `build-backend =
"setup"`; setuptools then runs it again as `__main__`, which calls setup()).

Chosen over shipping the contract modules inside the client's wheel: the contract stays one distribution, the
one triton-pooling-server and triton-pooling-backend depend on by name, so no two distributions own the same
files (the image installs all four with --no-deps, and uninstalling either would break the other), and nothing
is copied. The stub-side package (python_backend) depends on the contract only and never pulls tritonclient.
tests/unit/test_client_install.py installs the client alone in a fresh venv.
"""

import os
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 — the wheel and sdist hooks, unchanged

CONTRACT = Path(__file__).resolve().parent.parent / "contract"
DEPENDENCIES = ["numpy", "tritonclient[grpc,http]>=2.51", "tqdm"]
EDITABLE = "TRITON_POOLING_CLIENT_EDITABLE_BUILD"  # set by the editable hooks, in their own build process


def _editable(hook):
    def run(*args, **kwargs):
        os.environ[EDITABLE] = "1"
        return hook(*args, **kwargs)

    run.__name__ = hook.__name__
    return run


get_requires_for_build_editable = _editable(_setuptools.get_requires_for_build_editable)
prepare_metadata_for_build_editable = _editable(_setuptools.prepare_metadata_for_build_editable)
build_editable = _editable(_setuptools.build_editable)


def contract_requirement() -> str:
    beside = (CONTRACT / "pyproject.toml").is_file() and (CONTRACT / "triton_pooling_contract").is_dir()
    if beside and not os.environ.get(EDITABLE):
        return f"triton-pooling-contract @ {CONTRACT.as_uri()}"
    return "triton-pooling-contract"


if __name__ == "__main__":
    from setuptools import setup

    setup(install_requires=[contract_requirement(), *DEPENDENCIES])
