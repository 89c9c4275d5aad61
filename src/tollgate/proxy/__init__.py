"""The data plane's core: admission, relay, SSE, settlement; upstreams and `auto` routing below it. Speaks the domain."""
