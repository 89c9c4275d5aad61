"""Tokens/s of the bundled SmolLM2 through the running gateway (HTTP, streamed) vs llama-cpp-python itself.

Both sides in one run, alternating, same weights, thread settings, prompt, greedy
sampling and max_tokens: llama-cpp-python's own streamed `create_chat_completion`
in this process, and a streamed `POST /v1/chat/completions` to `tollgate serve`
started with no config (the embedded default), measured from sending the request
to the last byte. Prints the medians and their ratio (target >= 0.90).

    .venv/bin/python bench/local_gateway_speed.py [--max-tokens 128] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from llama_cpp import Llama

from tollgate.config.defaults import local_upstreams
from tollgate.proxy.upstream.local.files import bundled_gguf
from tollgate.proxy.upstream.local.threads import default_threads

MESSAGES = [{"role": "user", "content": "Write a long story about a dragon who learns to fly."}]
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def direct(llm: Llama, max_tokens: int) -> float:
    started = time.perf_counter()
    n = 0
    for chunk in llm.create_chat_completion(MESSAGES, max_tokens=max_tokens, temperature=0.0, seed=1, stream=True):
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            n += 1
    return n / (time.perf_counter() - started)


def through_gateway(client: httpx.Client, url: str, key: str, max_tokens: int) -> float:
    body = {"model": "smollm2-135m-instruct", "messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0,
            "seed": 1, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    tokens = 0
    with client.stream("POST", url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {") and '"usage":{' in line.replace(" ", ""):
                usage = json.loads(line[6:]).get("usage")
                if usage:
                    tokens = usage["completion_tokens"]
    return tokens / (time.perf_counter() - started)


def start_gateway(workdir: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    env = {**os.environ, "TOLLGATE_PORT": str(port), "TOLLGATE_ADMIN_TOKEN": "bench_" + secrets.token_urlsafe(32),
           "TOLLGATE_DATABASE": f"sqlite:///{workdir / 'tollgate.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "tollgate", "serve"], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    quick = subprocess.run([sys.executable, "-m", "tollgate", "quickstart", "--json"], cwd=workdir, env=env,
                           capture_output=True, text=True, check=True)
    return proc, url, json.loads(quick.stdout)["api_key"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    upstream = local_upstreams()[0]
    threads = default_threads(upstream.threads)
    llm = Llama(str(bundled_gguf()), n_ctx=upstream.context, n_threads=threads, n_threads_batch=threads, verbose=False)
    llm.create_chat_completion(MESSAGES, max_tokens=8)  # warm-up, as the gateway's upstream does on start
    with tempfile.TemporaryDirectory() as folder:
        proc, url, key = start_gateway(Path(folder))
        try:
            client = httpx.Client(timeout=600)
            through_gateway(client, url, key, 8)  # warm-up
            ours, theirs = [], []
            for _ in range(args.runs):
                theirs.append(direct(llm, args.max_tokens))
                ours.append(through_gateway(client, url, key, args.max_tokens))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    direct_tps, gateway_tps = statistics.median(theirs), statistics.median(ours)
    print(f"threads {threads}, max_tokens {args.max_tokens}, {args.runs} runs each, alternating")
    print(f"llama-cpp-python streamed, in process : {direct_tps:7.1f} tok/s (runs: {', '.join(f'{x:.1f}' for x in theirs)})")
    print(f"tollgate over HTTP, streamed          : {gateway_tps:7.1f} tok/s (runs: {', '.join(f'{x:.1f}' for x in ours)})")
    print(f"ratio: {gateway_tps / direct_tps:.3f} (target >= 0.90)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
