"""A seeded checkpoint with a 0.6B-class model's width and vocabulary (Qwen3-Embedding-0.6B: hidden 1024, vocabulary
151,669), fewer layers by default so it builds in a minute or two on 2 cores: what the memory measurements use.

    python -m bench.big_model OUT_DIR [--layers 8]      # then: triton-pooling build OUT_DIR --repository ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

QWEN3_06B = dict(hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072,
                 max_position_embeddings=32768, vocab_size=151669, initializer_range=0.02, tie_word_embeddings=True)


def write(out_dir: Path, layers: int = 8, seed: int = 0) -> Path:
    import torch
    import transformers

    from triton_pooling_server.builder.seeded import byte_level_qwen2_tokenizer

    tokenizer = byte_level_qwen2_tokenizer()
    config = transformers.Qwen3Config(num_hidden_layers=layers, pad_token_id=tokenizer.pad_token_id, **QWEN3_06B)
    torch.manual_seed(seed)
    model = transformers.Qwen3Model(config).eval()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.big_model", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--layers", type=int, default=8, help="28 for Qwen3-Embedding-0.6B's depth")
    args = parser.parse_args(argv)
    path = write(args.out_dir, args.layers)
    size = sum(f.stat().st_size for f in path.glob("*.safetensors"))
    print(f"wrote {path} ({size / 2**30:.2f} GiB of weights)")


if __name__ == "__main__":
    main()
