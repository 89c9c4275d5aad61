"""Tokens/s of the bundled SmolLM2: llama-cpp-python directly vs through `LlamaUpstream`.

Same weights, thread settings, prompt, greedy sampling and max_tokens on every
side, so the ratios isolate what the upstream adds (worker thread, per-token
hand-off to the event loop, SSE formatting). Sides alternate run by run and
the median of each is reported, both as wall-clock tokens/s and as tokens per
CPU-second of the whole process (every thread, the event loop's included):
the second is far less disturbed by other processes on a shared machine.
Target: LlamaUpstream streaming >= 0.90 of llama-cpp-python's own speed.

    .venv/bin/python bench/local_model_speed.py [--max-tokens 128] [--runs 5] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import orjson
from llama_cpp import Llama

from tollgate.config import UpstreamConfig
from tollgate.proxy.upstream.local.files import bundled_gguf
from tollgate.proxy.upstream.local.llama import LlamaUpstream
from tollgate.proxy.upstream.local.llama_prompt import PromptBuilder

MESSAGES = [{"role": "user", "content": "Write a long story about a dragon who learns to fly."}]
BASELINE = "llama-cpp-python create_chat_completion"
RAW = "llama-cpp-python Llama.generate (token ids only)"
OURS = ("LlamaUpstream non-streamed", "LlamaUpstream streamed (SSE)")


class Clock:
    """Wall and process CPU time of one run."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


Result = tuple[int, Clock]


def direct(llm: Llama, max_tokens: int) -> Result:
    with Clock() as clock:
        out = llm.create_chat_completion(MESSAGES, max_tokens=max_tokens, temperature=0.0, seed=1)
    return out["usage"]["completion_tokens"], clock


def direct_stream(llm: Llama, max_tokens: int) -> Result:
    with Clock() as clock:
        pieces = llm.create_chat_completion(
            MESSAGES, max_tokens=max_tokens, temperature=0.0, seed=1, stream=True)
        for _ in pieces:
            pass
    # llama-cpp-python's stream carries no usage: the same request's count.
    return direct(llm, max_tokens)[0], clock


def raw(llm: Llama, prompt: list[int], max_tokens: int, cpu: list[float]) -> Result:
    """The floor of llama-cpp-python: `Llama.generate` alone, no text, no JSON."""
    count = 0
    thread_cpu = time.thread_time()
    with Clock() as clock:
        for token in llm.generate(prompt, top_k=40, top_p=1.0, min_p=0.05, temp=0.0):
            if token == llm.token_eos() or count == max_tokens:
                break
            count += 1
    cpu.append((time.thread_time() - thread_cpu) / max(count, 1))
    return count, clock


async def through(
    upstream: LlamaUpstream, max_tokens: int, stream: bool, split: dict[str, list[float]]
) -> Result:
    body = {"model": "bench", "messages": MESSAGES, "max_tokens": max_tokens,
            "temperature": 0, "seed": 1}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    usage = None
    worker_cpu, loop_cpu = upstream.stats.cpu_seconds, time.thread_time()
    with Clock() as clock:
        response = await upstream.send("/chat/completions", orjson.dumps(body))
        if stream:
            async for chunk in response.chunks():
                if b'"usage":{' in chunk:
                    usage = orjson.loads(chunk[len(b"data: "):])["usage"]
        else:
            usage = orjson.loads(await response.read())["usage"]
    assert usage is not None, "no usage in the response"
    loop_cpu = time.thread_time() - loop_cpu  # this thread runs the event loop
    count = usage["completion_tokens"]
    if stream:
        split["worker"].append((upstream.stats.cpu_seconds - worker_cpu) / count)
        split["loop"].append(loop_cpu / count)
    return count, clock


async def main(args: argparse.Namespace) -> None:
    config = UpstreamConfig(name="bench", kind="llama_cpp", threads=args.threads)
    upstream = LlamaUpstream(config)
    with Clock() as load_upstream:
        await upstream.start()
    with Clock() as load_direct:
        llm = Llama(str(bundled_gguf()), n_ctx=config.context, n_threads=upstream.threads,
                    n_threads_batch=upstream.threads_batch, verbose=False)
        direct(llm, 8)  # the same warm-up LlamaUpstream.start does
    prompt = PromptBuilder(llm).chat_tokens(MESSAGES)
    print(f"threads: generation {upstream.threads}, prompt {upstream.threads_batch}; "
          f"prompt {len(prompt)} tokens, max_tokens {args.max_tokens}, {args.runs} runs each")
    print(f"load + warm-up: LlamaUpstream.start {load_upstream.wall:.2f} s, "
          f"Llama() + first request {load_direct.wall:.2f} s")

    split: dict[str, list[float]] = {"raw": [], "worker": [], "loop": []}
    sides: dict[str, Callable[[], Result | Awaitable[Result]]] = {
        RAW: lambda: raw(llm, prompt, args.max_tokens, split["raw"]),
        BASELINE: lambda: direct(llm, args.max_tokens),
        BASELINE + " stream": lambda: direct_stream(llm, args.max_tokens),
        OURS[0]: lambda: through(upstream, args.max_tokens, False, split),
        OURS[1]: lambda: through(upstream, args.max_tokens, True, split),
    }
    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    tokens: dict[str, int] = {}
    for _ in range(args.runs):
        for name, run in sides.items():
            result = run()
            count, clock = await result if asyncio.iscoroutine(result) else result
            tokens[name] = count
            wall[name].append(count / clock.wall)
            cpu[name].append(count / clock.cpu)
    med_wall = {name: statistics.median(v) for name, v in wall.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    print(f"{'median over runs':52s} {'tok/s wall':>11s} {'tok/CPU-s':>10s} tokens")
    for name in sides:
        print(f"  {name:50s} {med_wall[name]:11.1f} {med_cpu[name]:10.1f} {tokens[name]:6d}")
    for base in (BASELINE, RAW):
        for name in OURS:
            print(f"ratio {name} / {base}: wall {med_wall[name] / med_wall[base]:.3f}, "
                  f"CPU {med_cpu[name] / med_cpu[base]:.3f}")
    ms = {k: statistics.median(v) * 1000 for k, v in split.items()}
    print(f"CPU ms per token (thread CPU time, immune to other processes): "
          f"Llama.generate {ms['raw']:.2f}; LlamaUpstream stream: worker thread "
          f"{ms['worker']:.2f} + event loop {ms['loop']:.3f} = {ms['worker'] + ms['loop']:.2f} "
          f"(ratio {ms['raw'] / (ms['worker'] + ms['loop']):.3f})")
    llm.close()
    await upstream.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    asyncio.run(main(parser.parse_args()))
