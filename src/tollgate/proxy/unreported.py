"""Usage the upstream did not report: counted as the server counts, or else a true upper bound.

Some servers send no usage at all for a stream (llama-cpp-python's server ignores
`stream_options.include_usage`), and a stream cut short never gets to its usage chunk.
The gateway must still bill, and must never bill below the real count without saying so:

- COUNTED, when the model's tokenizer and chat template are the server's own (a counter with
  `exact`: the GGUF the server loads, proxy/tokenizer_file.py): the prompt is rendered and
  tokenized as the server does, the generated text re-tokenized.
- BOUND otherwise: the prompt bound the reservation was made for (proxy/estimate.py; never below
  the real count), and for the output the text's UTF-8 byte length (a byte-level BPE token is
  never less than one byte) or the number of streamed pieces if larger, at most the output the
  upstream was allowed. Expensive for the client, so the record says so (`usage_basis`), and a
  tokenizer in the model's configuration turns it into an exact count.
"""

from __future__ import annotations

from tollgate.domain.usage import BOUND, COUNTED
from tollgate.proxy.call import CHAT, COMPLETIONS, EMBEDDINGS, Call
from tollgate.proxy.estimate import text_bytes
from tollgate.proxy.sse import Usage
from tollgate.proxy.upstream.base import TokenCounter


def _exact_prompt(call: Call, counter: TokenCounter) -> int | None:
    """The server's own prompt count, where the request's shape lets us reproduce it."""
    body = call.body
    try:
        if call.endpoint == CHAT:
            messages = body.get("messages")
            tools = body.get("tools")
            if not isinstance(messages, list) or body.get("functions") or body.get("response_format"):
                return None  # what a server does with these is its own: bound them instead
            return counter.count_chat(messages, tools if isinstance(tools, list) else None)
        if call.endpoint == COMPLETIONS:
            prompt = body.get("prompt")
            return counter.count_text(prompt) if isinstance(prompt, str) and not body.get("suffix") else None
    except ValueError:  # messages the model's template refuses: the server would not have counted them either
        return None
    return None


def count(call: Call, counter: TokenCounter | None, prompt_bound: int, output_allowed: int,
          text: str, pieces: int, prompt_only: bool = False) -> Usage:
    """Usage for a request whose upstream reported none. `text` is what it generated (all choices),
    `pieces` the stream's events (0 for a whole answer); `prompt_only` when no output is billed."""
    prompt = None
    if counter is not None and counter.exact:
        prompt = _exact_prompt(call, counter)
    if prompt is not None:
        if prompt_only or call.endpoint == EMBEDDINGS:
            return Usage(prompt, 0, COUNTED)
        if call.choices == 1:
            return Usage(prompt, counter.count_output(text), COUNTED)  # type: ignore[union-attr]
    if prompt_only or call.endpoint == EMBEDDINGS:
        return Usage(prompt_bound if prompt is None else prompt, 0, BOUND)
    output = min(max(text_bytes(text), pieces), max(output_allowed, 0))
    return Usage(prompt_bound if prompt is None else prompt, output, BOUND)
