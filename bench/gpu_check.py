"""The GPU check (run by bench/gpu_check.sh on a lent GPU machine): sentence-transformers on CUDA in fp32 and bf16
against the served `--profile gpu` model and the backend's engine in-process, for embed and seq_classify, on seeded
checkpoints made there (no hub, no MiniLM wheel: the carry limit), and one parity line per task.

    python -m bench.gpu_check --work /tmp/gpu-check [--seconds 10]
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from .corpus import make_corpus
from .processes import free_port

EMBED_SHAPE = dict(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=8, head_dim=64,
                   intermediate_size=3072, max_position_embeddings=2048)


def write_checkpoints(work: Path) -> tuple[Path, Path]:
    """An ST embed folder (Qwen3, last-token pooling, normalized) and a Qwen2 sequence classifier."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer, models

    from triton_pooling_server.builder.seeded import byte_level_qwen2_tokenizer

    tokenizer = byte_level_qwen2_tokenizer()
    torch.manual_seed(0)
    hf = work / "qwen3-hf"
    transformers.Qwen3Model(transformers.Qwen3Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                                     **EMBED_SHAPE)).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    st = work / "qwen3-st"
    body = models.Transformer(str(hf), max_seq_length=512)
    SentenceTransformer(modules=[body, models.Pooling(EMBED_SHAPE["hidden_size"], pooling_mode="lasttoken"),
                                 models.Normalize()]).save(str(st))
    cls = work / "qwen2-cls"
    config = transformers.Qwen2Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=3,
                                      **{k: v for k, v in EMBED_SHAPE.items() if k != "head_dim"})
    transformers.Qwen2ForSequenceClassification(config).save_pretrained(cls)
    tokenizer.save_pretrained(cls)
    return st, cls


def rate(fn, texts: list[str], batch: int, seconds: float) -> float:
    fn(texts[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(0, len(texts), batch):
            fn(texts[i:i + batch])
            done += len(texts[i:i + batch])
    return done / (time.perf_counter() - start)


def st_rows(st: Path, texts: list[str], seconds: float) -> tuple[list[str], np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer

    lines, reference = [], None
    for dtype in (torch.float32, torch.bfloat16):
        model = SentenceTransformer(str(st), device="cuda").to(dtype)
        if reference is None:
            reference = model.encode(texts[:128], batch_size=32, convert_to_numpy=True)
        for batch in (1, 32, 128):
            r = rate(lambda b: model.encode(b, batch_size=batch), texts, batch, seconds)
            lines.append(f"| sentence-transformers {str(dtype)[6:]} | embed | in-process | {batch} | {r:.1f} |")
        del model
        torch.cuda.empty_cache()
    return lines, reference


def classifier_rows(cls: Path, texts: list[str], seconds: float) -> tuple[list[str], np.ndarray]:
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(cls))
    lines, reference = [], None
    for dtype in (torch.float32, torch.bfloat16):
        model = transformers.AutoModelForSequenceClassification.from_pretrained(str(cls), dtype=dtype).cuda().eval()

        def scores(batch):
            enc = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt").to("cuda")
            with torch.inference_mode():
                return torch.softmax(model(**enc).logits.float(), -1).cpu().numpy()

        if reference is None:
            reference = np.concatenate([scores([t]) for t in texts[:64]])
        for batch in (1, 32):
            lines.append(f"| transformers {str(dtype)[6:]} | seq_classify | in-process | {batch} | "
                         f"{rate(scores, texts, batch, seconds):.1f} |")
        del model
        torch.cuda.empty_cache()
    return lines, reference


def engine_rows(st: Path, cls: Path, texts: list[str], seconds: float) -> list[str]:
    from triton_pooling_contract.definition import ModelDefinition
    from triton_pooling_contract.parameters import Device, Runtime
    from triton_pooling_contract.tasks import PoolingTask
    from triton_pooling_server.builder.artifact import load_service

    lines = []
    for task, path in ((PoolingTask.EMBED, st), (PoolingTask.SEQ_CLASSIFY, cls)):
        service = load_service(ModelDefinition(task, str(path), runtime=Runtime.TORCH, device=Device.CUDA,
                                               max_batch_tokens=16384).located())
        requests = lambda b: [{"TEXT": np.array([[t.encode()]], dtype=object)} for t in b]  # noqa: E731
        for batch in (1, 32):
            r = rate(lambda b: service.handle(requests(b)), texts, batch, seconds)
            lines.append(f"| backend engine (torch fp32, in-process) | {task.value} | in-process | {batch} | {r:.1f} |")
    return lines


def serve(repository: Path, log: Path):
    http, grpc, metrics = free_port(), free_port(), free_port()
    cli = [sys.executable, "-m", "triton_pooling_server.cli", "serve", "--model-repository", str(repository),
           "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    process = subprocess.Popen(cli, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return process, f"127.0.0.1:{grpc}"
        except OSError:
            time.sleep(1)
        if process.poll() is not None:
            break
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"serve did not get ready; log tail:\n{log.read_text(errors='replace')[-3000:]}")


def infer(client, model: str, text: str, output: str):
    import tritonclient.grpc as grpcclient

    item = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
    item.set_data_from_numpy(np.array([[text.encode()]], dtype=object))
    return client.infer(model, [item]).as_numpy(output)[0]


def closed_loop(url: str, model: str, output: str, texts: list[str], concurrency: int, seconds: float) -> tuple[float, float]:
    import tritonclient.grpc as grpcclient

    def worker(k: int):
        client, latencies, i = grpcclient.InferenceServerClient(url), [], k
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            infer(client, model, texts[i % len(texts)], output)
            latencies.append(time.perf_counter() - t0)
            i += concurrency
        return latencies

    start = time.perf_counter()
    with futures.ThreadPoolExecutor(concurrency) as pool:
        done = [x for f in [pool.submit(worker, k) for k in range(concurrency)] for x in f.result()]
    return len(done) / (time.perf_counter() - start), 1000 * float(np.median(done))


def served_rows(work: Path, st: Path, cls: Path, texts: list[str], seconds: float, references) -> list[str]:
    import tritonclient.grpc as grpcclient

    repository = work / "repository"
    for path, name in ((st, "embed"), (cls, "seq_classify")):
        subprocess.run([sys.executable, "-m", "triton_pooling_server.cli", "build", str(path), "--repository",
                        str(repository), "--name", name, "--profile", "gpu"], check=True)
    process, url = serve(repository, work / "serve.log")
    lines = []
    try:
        for name, output, reference in (("embed", "EMBEDDING", references[0]), ("seq_classify", "SCORES", references[1])):
            for c in (1, 32):
                r, p50 = closed_loop(url, name, output, texts, c, seconds)
                lines.append(f"| triton `--profile gpu` (torch fp32, gRPC) | {name} | served, p50 {p50:.1f} ms | c={c} | {r:.1f} |")
            client = grpcclient.InferenceServerClient(url)
            got = np.stack([infer(client, name, t, output) for t in texts[:len(reference)]])
            worst = float(np.abs(got - reference).max())
            cos = float(np.min(np.sum(got * reference, 1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)))
            lines.append(f"parity {name}: served vs in-process fp32 on CUDA over {len(reference)} texts, max-abs {worst:.2e}, "
                         f"lowest cosine {cos:.6f} (no TensorRT)")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-check"))
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    import torch

    args.work.mkdir(parents=True, exist_ok=True)
    texts = make_corpus("mix", 512)
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; mix corpus, texts/s\n", flush=True)
    st, cls = write_checkpoints(args.work)
    print("| system | task | how | batch / concurrency | texts/s |\n|---|---|---|---:|---:|")
    embed_lines, embed_ref = st_rows(st, texts, args.seconds)
    cls_lines, cls_ref = classifier_rows(cls, texts, args.seconds)
    for line in embed_lines + cls_lines + engine_rows(st, cls, texts, args.seconds):
        print(line, flush=True)
    for line in served_rows(args.work, st, cls, texts, args.seconds, (embed_ref, cls_ref)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
