"""The client installs alone: `pip install ./client` in a fresh venv, from a tree holding only client/ and
contract/ (what a clone or `pip install "git+<url>#subdirectory=client"` has beside it), pulls the contract from
../contract (it is on no index; client/setup.py names it by path) and imports. The editable shape of
`make install` (`-e ./contract -e ./client`) must still resolve in the same command, the contract editable.

The install needs the client's third-party dependencies (numpy, tritonclient, tqdm) from the configured index.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPY_IGNORES = shutil.ignore_patterns("*.egg-info", "__pycache__", "*.pyc", "build", "dist")


def client_setup():
    spec = importlib.util.spec_from_file_location("client_setup", ROOT / "client" / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the hooks; setup() runs only as __main__
    return module


def test_contract_requirement_is_the_path_beside_for_wheels_and_the_name_for_editables(monkeypatch):
    setup = client_setup()
    monkeypatch.delenv(setup.EDITABLE, raising=False)
    assert setup.contract_requirement() == f"triton-pooling-contract @ {(ROOT / 'contract').as_uri()}"
    monkeypatch.setenv(setup.EDITABLE, "1")  # what the *_editable hooks set: `-e ./contract -e ./client` resolves
    assert setup.contract_requirement() == "triton-pooling-contract"
    assert {"build_wheel", "build_sdist", "build_editable", "prepare_metadata_for_build_editable",
            "get_requires_for_build_editable", "prepare_metadata_for_build_wheel"} <= set(dir(setup))


def run(command: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_pip_install_client_alone_in_a_fresh_venv(tmp_path):
    tree = tmp_path / "repo"
    for package in ("client", "contract"):
        shutil.copytree(ROOT / package, tree / package, ignore=COPY_IGNORES)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "./client"], cwd=tree)
    code = ("import json, triton_pooling, triton_pooling_contract, tritonclient.grpc, tritonclient.http\n"
            "from triton_pooling import PoolingClient, AsyncPoolingClient\n"
            "print(json.dumps([triton_pooling.__file__, triton_pooling_contract.__file__]))")
    files = json.loads(run([str(python), "-c", code], cwd=tmp_path).stdout)
    assert all(Path(f).is_relative_to(venv) for f in files), files  # installed copies, not the tree
    run([str(python), "-m", "pip", "check"], cwd=tmp_path)
    # make install's shape in the same command: both editable, no "conflicting dependencies"
    report = json.loads(run([str(python), "-m", "pip", "install", "-q", "--dry-run", "--report", "-",
                             "-e", "./contract", "-e", "./client"], cwd=tree).stdout)
    editable = {i["metadata"]["name"]: i["download_info"].get("dir_info", {}).get("editable") for i in report["install"]}
    assert editable == {"triton-pooling-contract": True, "triton-pooling": True}, editable
