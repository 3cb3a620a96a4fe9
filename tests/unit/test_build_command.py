"""`triton-pooling build` end to end on folders: idempotent, refuses to overwrite, --force, --copy-checkpoint.

The checkpoints here are JSON with fake weights, so these builds pin `--runtime torch` (no graph to export; the
lean runtimes' builds are in test_lean_runtime.py and tests/integration/test_build_served.py)."""

from __future__ import annotations

import subprocess
import sys

from triton_pooling_server.cli import main

from unit.build_helpers import fake_checkpoint


def build(*args) -> int:
    args = tuple(map(str, args))
    return main(["build", *args, *(() if "--runtime" in args else ("--runtime", "torch", "--cpus", "2"))])


def test_build_writes_config_and_model_py(tmp_path, capsys):
    ckpt = fake_checkpoint(tmp_path / "ner", ("BertForTokenClassification",), num_labels=5)
    assert build(ckpt, "--repository", tmp_path / "repo", "--name", "ner", "--max-batch-size", 8) == 0
    config = (tmp_path / "repo" / "ner" / "config.pbtxt").read_text()
    assert 'name: "ner"' in config and "max_batch_size: 8" in config
    assert 'key: "pooling_task" value { string_value: "token_classify" }' in config
    assert f'string_value: "{ckpt.resolve()}"' in config
    assert 'task = "token_classify"' in (tmp_path / "repo" / "ner" / "1" / "model.py").read_text()
    assert "created: model 'ner' (token_classify" in capsys.readouterr().out


def test_rebuild_is_idempotent_and_a_different_model_needs_force(tmp_path, capsys):
    ckpt = fake_checkpoint(tmp_path / "ckpt")
    repo = tmp_path / "repo"
    assert build(ckpt, "--repository", repo) == 0
    before = (repo / "embed" / "config.pbtxt").stat().st_mtime_ns
    assert build(ckpt, "--repository", repo) == 0
    assert "unchanged: model 'embed'" in capsys.readouterr().out
    assert (repo / "embed" / "config.pbtxt").stat().st_mtime_ns == before
    assert build(ckpt, "--repository", repo, "--pooling-type", "CLS") == 2
    assert "already holds a different model (embed/config.pbtxt differs); pass --force" in capsys.readouterr().err
    assert 'string_value: "MEAN"' in (repo / "embed" / "config.pbtxt").read_text()
    assert build(ckpt, "--repository", repo, "--pooling-type", "CLS", "--force") == 0
    assert "replaced: model 'embed'" in capsys.readouterr().out
    assert 'string_value: "CLS"' in (repo / "embed" / "config.pbtxt").read_text()


def test_copy_checkpoint_is_relative_and_compared_on_rebuild(tmp_path, capsys):
    ckpt = fake_checkpoint(tmp_path / "ckpt")
    repo = tmp_path / "repo"
    assert build(ckpt, "--repository", repo, "--copy-checkpoint") == 0
    assert (repo / "embed" / "checkpoint" / "model.safetensors").read_bytes() == b"weights"
    assert 'key: "checkpoint" value { string_value: "checkpoint" }' in (repo / "embed" / "config.pbtxt").read_text()
    assert build(ckpt, "--repository", repo, "--copy-checkpoint") == 0
    (ckpt / "model.safetensors").write_bytes(b"retrained")
    assert build(ckpt, "--repository", repo, "--copy-checkpoint") == 2
    assert "checkpoint/model.safetensors differs from the source checkpoint" in capsys.readouterr().err


def test_copy_checkpoint_of_a_checkpoint_already_in_the_model_folder_keeps_it(tmp_path):
    """The defaults' seeded checkpoints live at <model>/checkpoint already: copying one onto itself is a no-op."""
    repo = tmp_path / "repo"
    ckpt = fake_checkpoint(repo / "embed" / "checkpoint")
    assert build(ckpt, "--repository", repo, "--copy-checkpoint") == 0
    assert (ckpt / "model.safetensors").read_bytes() == b"weights"
    assert 'key: "checkpoint" value { string_value: "checkpoint" }' in (repo / "embed" / "config.pbtxt").read_text()


def test_refusals_exit_2_with_the_reason(tmp_path, capsys):
    ckpt = fake_checkpoint(tmp_path / "reward", ("Qwen2ForSequenceClassification",), num_labels=1)
    assert build(ckpt, "--repository", tmp_path / "repo", "--task", "token_classify") == 2
    assert "supported tasks: 'seq_classify'" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def test_build_cli_for_the_torch_runtime_does_not_import_torch(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "ckpt")
    code = ("import sys; from triton_pooling_server.cli import main; "
            f"rc = main(['build', {str(ckpt)!r}, '--repository', {str(tmp_path / 'repo')!r}, '--runtime', 'torch']); "
            "assert rc == 0; print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_switching_a_name_from_the_ensemble_layout_needs_force_and_removes_its_steps(tmp_path, capsys):
    ckpt = fake_checkpoint(tmp_path / "ckpt")
    config = ckpt / "config.json"
    config.write_text(config.read_text()[:-1] + ', "hidden_size": 8, "max_position_embeddings": 64}')
    repo = tmp_path / "repo"
    assert build(ckpt, "--repository", repo, "--runtime", "tensorrt") == 0
    assert {p.name for p in repo.iterdir()} == {"embed", "embed_tokenize", "embed_encoder", "embed_head"}
    assert build(ckpt, "--repository", repo, "--runtime", "tensorrt") == 0
    assert "unchanged: model 'embed'" in capsys.readouterr().out
    assert build(ckpt, "--repository", repo) == 2
    assert "embed_tokenize belongs to another layout of this model" in capsys.readouterr().err
    assert build(ckpt, "--repository", repo, "--force") == 0
    assert {p.name for p in repo.iterdir()} == {"embed"}
