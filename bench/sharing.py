"""Do instances of one model share its weights? K processes each open the same built graph (as K Triton instances
would), run a few passes, then the PSS of each (shared pages split among the processes mapping them) is read.

    python -m bench.sharing GRAPH_FOLDER [--runtimes onnx,openvino_bf16] [--instances 1,3]

GRAPH_FOLDER holds serving.json (or graph.json) and the graph; one line per runtime and instance count, with the
total PSS and its ratio to one instance's (the target: 3 instances <= 1.3x one).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

from .footprint import kb_field
from .hostinfo import host_label


def _description(folder: Path):
    from triton_pooling_contract.serving import DESCRIPTION_FILE, ServingDescription

    for name in (DESCRIPTION_FILE, "graph.json"):
        if (folder / name).is_file():
            return ServingDescription.read_file(folder / name)
    raise SystemExit(f"{folder} holds no serving.json / graph.json")


def _instance(folder: str, runtime: str, threads: int, ready, done) -> None:
    from triton_pooling_backend.encoders import open_lean_encoder
    from triton_pooling_contract.parameters import Runtime

    from .curve import fixed_batch

    d = _description(Path(folder))
    encoder = open_lean_encoder(Runtime(runtime), Path(folder) / d.graph, d.graph_inputs, d.graph_output, threads)
    types = "token_type_ids" in d.graph_inputs
    for rows, tokens in ((1, 16), (4, 64), (8, 128)):  # activations as a served pass would grow them
        encoder.run(fixed_batch(rows, tokens, vocab=d.vocab_size, with_types=types))
    ready.set()
    done.wait()


def measure(folder: Path, runtime: str, instances: int, threads: int = 1) -> list[dict[str, float]]:
    """PSS / RSS / private bytes (MB) of each of `instances` processes holding the model."""
    ctx = mp.get_context("spawn")
    done = ctx.Event()
    started = []
    for _ in range(instances):
        ready = ctx.Event()
        p = ctx.Process(target=_instance, args=(str(folder), runtime, threads, ready, done), daemon=True)
        p.start()
        started.append((p, ready))
    try:
        for p, ready in started:
            while not ready.wait(1.0):
                if not p.is_alive():
                    raise RuntimeError(f"an instance exited with {p.exitcode} before it was ready")
        time.sleep(0.5)
        rows = []
        for p, _ in started:
            rollup = Path(f"/proc/{p.pid}/smaps_rollup")
            rows.append({k: kb_field(rollup, f) / 1024 for k, f in (("pss", "Pss"), ("rss", "Rss"),
                                                                   ("private", "Private_Dirty"))})
        return rows
    finally:
        done.set()
        for p, _ in started:
            p.join(10)
            if p.is_alive():
                p.kill()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sharing", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runtimes", default="onnx,openvino,openvino_bf16")
    parser.add_argument("--instances", default="1,3")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.instances.split(",")]
    graph_mb = sum(f.stat().st_size for f in args.folder.iterdir() if f.name.startswith("encoder")) / 2**20
    print(f"Host: {host_label()}; {args.folder} (graph files {graph_mb:.0f} MB)\n")
    print("| runtime | instances | PSS total MB | PSS per instance MB | private dirty per instance MB | x one |")
    print("|---|---:|---:|---:|---:|---:|")
    for runtime in args.runtimes.split(","):
        one = None
        for n in counts:
            rows = measure(args.folder, runtime, n)
            total = sum(r["pss"] for r in rows)
            one = total if one is None else one
            print(f"| {runtime} | {n} | {total:.0f} | {total / n:.0f} | {sum(r['private'] for r in rows) / n:.0f} | "
                  f"{total / one:.2f} |", flush=True)


if __name__ == "__main__":
    main()
